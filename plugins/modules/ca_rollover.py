#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_rollover
short_description: Replace the fleet's CA in phases, recorded on the CA host so a re-run continues
version_added: 0.2.0
description:
  - Runs on the CA host and makes the CA-side changes of one phase of a CA rollover. The
    C(ca_rollover) playbook brings the fleet along after each phase and checks it before the
    phase is marked verified; use that playbook rather than this module alone.
  - "V(trust): a new CA (new keys, named after O(common_name) with the generation appended, for
    example C(mtls.fleet root CA G2)) is made next to the active one; for a root rollover the
    trust bundle then holds both roots. An intermediate rollover makes a new intermediate under
    the same root and leaves the bundle alone."
  - "V(reissue): the new CA becomes the issuing CA and the old one is kept aside; every leaf it
    signed is now due (reason V(issuer_changed) in M(mtls.fleet.certificates))."
  - "V(retire): the old root leaves the trust bundle (root), or the root revokes the old
    intermediate in its CRL (intermediate). When this phase is verified the old CA's keys are
    destroyed and its certificates archived under C(retired/)."
  - The phase in progress and the verified ones are recorded in C(rollover/state.json). Beginning
    a phase again is harmless; beginning any other phase than the next one fails and says which
    one is next. Without O(phase) the module only reports.
  - Each phase also keeps two short-lived client identities, one from the old and one from the
    new CA, in C(rollover/probes/), so the playbook can show which CA's clients each host accepts.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.no_diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca.spec
  - mtls.fleet.ca.lock
  - mtls.fleet.ca.pkcs11
attributes:
  diff_mode:
    details: The result holds the phase done and the plan.
options:
  kind:
    description:
      - What to replace when no rollover is in progress. V(root) makes a new root (and
        intermediate, with O(intermediate)); V(intermediate) a new intermediate under the same root.
      - Ignored (apart from a check that it matches) while a rollover is in progress.
    type: str
    choices: [root, intermediate]
  phase:
    description: The phase to begin or to record as verified. Omit it to report only.
    type: str
    choices: [trust, reissue, retire]
  state:
    description: V(begun) makes the phase's changes on the CA host; V(verified) records that the fleet was checked.
    type: str
    choices: [begun, verified]
    default: begun
seealso:
  - module: mtls.fleet.ca
  - module: mtls.fleet.crl
"""

EXAMPLES = r"""
- name: Where is the rollover?
  mtls.fleet.ca_rollover:
    path: /var/lib/mtls-fleet/ca
  delegate_to: localhost
  register: rollover

- name: Begin the first phase of a root rollover
  mtls.fleet.ca_rollover:
    path: /var/lib/mtls-fleet/ca
    intermediate: true
    kind: root
    phase: trust
  delegate_to: localhost
"""

RETURN = r"""
rollover:
  description: The rollover after this run.
  returned: always
  type: dict
  contains:
    in_progress:
      description: Whether a rollover is in progress.
      type: bool
    next_phase:
      description: The phase to run next, or null.
      type: str
      sample: reissue
    state:
      description: The record (kind, generation, started, verified phases, finished), or null before the first rollover.
      type: dict
    cas:
      description: Facts about the active, next and previous CA certificates (no key material).
      type: dict
actions:
  description: What this run changed (or in check mode would change) on the CA host, in words.
  returned: always
  type: list
  elements: str
probes:
  description: Paths on the CA host of the probe identities (C(old), C(new)), each with C(cert_path) and C(key_path).
  returned: while a rollover is in progress
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import pki, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import (
    CA_SPEC_ARGS, LOCK_ARGS, PKCS11_ARGS, USER_ERRORS, ca_keys, ca_spec, ca_state_lock, require_cryptography,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CA_SPEC_ARGS,
            kind=dict(type="str", choices=[k.value for k in rollover.Kind]),
            phase=dict(type="str", choices=list(rollover.PHASES)),
            state=dict(type="str", choices=["begun", "verified"], default="begun"),
            **LOCK_ARGS,
            **PKCS11_ARGS,
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    now = pki.utcnow()
    path = params["path"]
    step = rollover.Step()
    try:
        with ca_state_lock(module, path, "mtls.fleet.ca_rollover"), ca_keys(params, params["passphrase"]) as keys:
            if params["phase"] and params["state"] == "begun":
                kind = rollover.Kind.parse(params["kind"]) if params["kind"] else None
                step = rollover.begin(path, params["phase"], kind, ca_spec(params), keys, now, module.check_mode)
            elif params["phase"]:
                step = rollover.verified(path, params["phase"], keys, now, module.check_mode)
            report = rollover.status(path, now)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {path}: {exc}")
    output = dict(changed=step.changed, rollover=report, actions=step.actions)
    if report["in_progress"]:
        output["probes"] = {label: {"cert_path": os.path.join(path, rollover.PROBES, label, "cert.pem"),
                                    "key_path": os.path.join(path, rollover.PROBES, label, "key.pem")} for label in ("old", "new")}
    module.exit_json(**output)


if __name__ == "__main__":
    main()
