#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: revocation_check
short_description: From a revoked host, call every endpoint with its certificate until each refuses it, and time each refusal
version_added: 0.5.0
description:
  - Runs on a host whose certificate was just revoked. It calls every endpoint of O(endpoints)
    (nginx servers and apps of the other hosts, each at its C(address)) at once, each in its own
    thread, with the host's certificate.
    Each endpoint is called again every O(interval) seconds until it refuses the certificate (HTTP
    495, or a TLS alert) or O(wait) seconds pass.
  - Each refusal is timed from O(started), the moment the revocation began (C(mtls.fleet.revoke)
    takes it on the CA host). This host's clock is used, so clock skew between the two hosts adds to
    the figure.
  - Fails, naming them, when endpoints still accept the certificate after O(wait).
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.endpoints
options:
  ca_bundle_path:
    description: Trust bundle to verify the servers with.
    type: path
    required: true
  cert_path:
    description: The revoked certificate (chain).
    type: path
    required: true
  key_path:
    description: Its key.
    type: path
    required: true
  started:
    description: When the revocation began, in seconds since the epoch.
    type: float
    required: true
  wait:
    description: Seconds to keep calling an endpoint that still accepts the certificate.
    type: float
    default: 30
  interval:
    description: Seconds between two calls to the same endpoint.
    type: float
    default: 0.25
seealso:
  - module: mtls.fleet.crl
  - module: mtls.fleet.tls_probe
"""

EXAMPLES = r"""
- name: Time each endpoint's refusal of this host's revoked certificate
  mtls.fleet.revocation_check:
    endpoints: "{{ hostvars | mtls.fleet.endpoints(groups['mtls_hosts'] | difference([inventory_hostname]), groups['mtls_nginx'], groups['mtls_apps']) }}"
    ca_bundle_path: /etc/mtls/client/ca-bundle.pem
    cert_path: /etc/mtls/client/cert.pem
    key_path: /etc/mtls/client/key.pem
    started: "{{ revocation_started }}"
"""

RETURN = r"""
endpoints:
  description:
    - One record per endpoint, with C(host), C(label), C(refused), C(seconds) (from O(started) to the first
      refusal, or null), C(attempts), C(client) (what the last call made of the certificate), C(status) and C(error).
  returned: always
  type: list
  elements: dict
max_seconds:
  description: The longest time to a refusal, or null when no endpoint was called.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import probe
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import require_cryptography


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(type="list", elements="dict", default=[], options=probe.ENDPOINT_OPTIONS),
            ca_bundle_path=dict(type="path", required=True),
            cert_path=dict(type="path", required=True),
            key_path=dict(type="path", required=True, no_log=False),  # a path, not a key
            started=dict(type="float", required=True),
            wait=dict(type="float", default=30.0),
            interval=dict(type="float", default=0.25),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    p = module.params
    records = probe.until_refused(p["endpoints"], p["ca_bundle_path"], p["cert_path"], p["key_path"], p["started"], p["wait"], p["interval"])
    times = [r["seconds"] for r in records if r["seconds"] is not None]
    result = dict(changed=False, endpoints=records, max_seconds=max(times) if times else None)
    still = [r for r in records if not r["refused"]]
    if still:
        module.fail_json(msg="after %g s, %d endpoint(s) still accept %s or did not answer: %s; check that each host got the new CRLs "
                             "(mtls.fleet.revoke publishes them) and that the service loads its CRL file"
                             % (p["wait"], len(still), p["cert_path"], ", ".join(f"{r['host']} {r['label']} ({r['client']})" for r in still)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
