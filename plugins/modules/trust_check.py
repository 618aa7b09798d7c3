#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: trust_check
short_description: Prove which CA's clients every mTLS endpoint of a host accepts, in one call
version_added: 0.4.0
description:
  - Calls each of the host's endpoints (nginx servers and apps) on 127.0.0.1 as each probe identity
    of a CA rollover, and checks the server accepts or refuses it as O(expected) says. Each call is
    retried until it does or O(attempts) run out, since a reload may still be settling.
  - Under TLS 1.3 a refused client only learns it on its first read, so every call reads an answer.
  - "The identities' keys never reach a disk on the host: they are handed to TLS as anonymous
    memory files (memfd), or where the kernel has none as files in a private directory removed at
    the end. Pipeline the task (C(ansible_pipelining=true)) so that its arguments, which hold the
    keys, are never written into a module file either."
  - Read-only. Fails, with every endpoint's outcome, when one does not end as expected.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.endpoints
options:
  certs_dir:
    description: Where the host keeps each service's files; an endpoint is verified against its service's C(ca-bundle.pem) there.
    type: path
    default: /etc/mtls
  probes:
    description: The probe identities' paths on the CA host, as the C(probes) of M(mtls.fleet.ca_rollover)'s result.
    type: dict
    required: true
  probe_files:
    description:
      - The results of M(ansible.builtin.slurp) of those files on the CA host (each with C(source) and C(content)).
      - Their keys are private keys; the task should be pipelined and its result is never logged with them.
    type: list
    elements: dict
    required: true
  expected:
    description: For each probe identity named in O(probes), V(accepted) or V(refused).
    type: dict
    required: true
  attempts:
    description: Calls per endpoint and identity before its outcome counts.
    type: int
    default: 10
  delay:
    description: Seconds between calls.
    type: float
    default: 1.0
"""

EXAMPLES = r"""
- name: Every endpoint accepts the new CA's clients and refuses the old CA's
  mtls.fleet.trust_check:
    endpoints: "{{ hostvars | mtls.fleet.endpoints([inventory_hostname], groups['mtls_nginx'], groups['mtls_apps']) }}"
    probes: "{{ hostvars['ca-1'].mtls_ca_rollover_result.probes }}"
    probe_files: "{{ probe_files.results }}"
    expected: {old: refused, new: accepted}
  vars:
    ansible_pipelining: true
"""

RETURN = r"""
probes:
  description: One record per endpoint and probe identity.
  returned: always
  type: list
  elements: dict
  contains:
    endpoint:
      description: The endpoint's label.
      type: str
    kind:
      description: V(nginx) or V(app).
      type: str
    service:
      description: The service it serves.
      type: str
    port:
      description: Its port.
      type: int
    identity:
      description: The probe identity, for example V(old) or V(new).
      type: str
    expected:
      description: V(accepted) or V(refused).
      type: str
    client:
      description: What the server made of the identity, V(accepted), V(refused) or V(unknown).
      type: str
    ok:
      description: Whether it ended as expected.
      type: bool
    attempts:
      description: Calls made.
      type: int
    status:
      description: The HTTP status of the last call, or null.
      type: int
    error:
      description: Why the last call got no HTTP answer, or null.
      type: str
"""

import base64
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import probe
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(type="list", elements="dict", default=[], options=probe.ENDPOINT_OPTIONS),
            certs_dir=dict(type="path", default="/etc/mtls"),
            probes=dict(type="dict", required=True),
            probe_files=dict(type="list", elements="dict", required=True, no_log=True),
            expected=dict(type="dict", required=True),
            attempts=dict(type="int", default=10),
            delay=dict(type="float", default=1.0),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    contents = {str(read.get("source")): read.get("content") for read in params["probe_files"]}
    files = {}
    for name, want in params["expected"].items():
        if want not in ("accepted", "refused"):
            module.fail_json(msg=f"expected.{name}: {want!r} is neither accepted nor refused")
        paths = params["probes"].get(name) or {}
        for part in ("cert", "key"):
            content = contents.get(str(paths.get(f"{part}_path")))
            if not content:
                module.fail_json(msg=f"probe identity {name}: its {part} ({paths.get(f'{part}_path')}) is not among probe_files; "
                                     "slurp every file the CA's probes name")
            files[f"{name}-{part}"] = base64.b64decode(content)
    with probe.memory_files(files) as paths:
        records = probe.check_trust(params["endpoints"], {name: (paths[f"{name}-cert"], paths[f"{name}-key"]) for name in params["expected"]},
                                    params["expected"], lambda e: os.path.join(params["certs_dir"], e["service"], "ca-bundle.pem"),
                                    attempts=max(1, params["attempts"]), delay=params["delay"])
    wrong = [r for r in records if not r["ok"]]
    if wrong:
        module.fail_json(msg="; ".join(f"{r['endpoint']}: the {r['identity']}-CA client was {r['client']}, expected {r['expected']} "
                                       f"(HTTP {r['status']}: {r['error'] or 'answered'}, {r['attempts']} calls)" for r in wrong),
                         probes=records)
    module.exit_json(changed=False, probes=records)


if __name__ == "__main__":
    main()
