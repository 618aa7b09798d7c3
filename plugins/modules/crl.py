#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: crl
short_description: Revoke certificates and keep the CA's certificate revocation lists current
version_added: 0.2.0
description:
  - Runs on the CA host. Records the certificates in O(revoke) as revoked (in C(revoked.json) of
    the CA directory), then makes sure C(crl.pem) there holds a current CRL from every CA the
    directory signs for, and returns it for the hosts.
  - One CRL per CA, all in one file, because nginx's C(ssl_crl) checks every certificate of a
    client's chain and refuses the client when any CA of it has no CRL. During a CA rollover that
    includes the next or previous CA.
  - The CRLs are re-signed when a revocation or a CA was added or removed, and when one comes
    within O(renew_before) of its next update, so a regular rotation run keeps them from ever
    expiring (an expired CRL makes nginx refuse every client).
  - Revoking by name revokes the certificate in the store and the one it replaced, if still
    valid. A revoked certificate is re-issued by the next M(mtls.fleet.certificates) run
    (reason V(revoked)), so revoke first, fix the host, then run the rollout.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca
  - mtls.fleet.ca.lock
  - mtls.fleet.ca.pkcs11
attributes:
  diff_mode:
    support: partial
    details: Lists the certificates the run revokes and why the CRLs are re-signed.
options:
  revoke:
    description: Certificates to revoke, each by O(revoke[].name) or by O(revoke[].serial).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the certificate in the CA's store, C(<inventory host>-<service>).
        type: str
      serial:
        description: Serial number in hex, as openssl and nginx's C($ssl_client_serial) print it.
        type: str
      host:
        description:
          - With O(revoke[].name), the inventory host the certificate is meant to be for. Refused when the CA's store
            records another host for that name (a name two hosts' services once shared), so a revocation never hits
            another host's certificate.
        type: str
        version_added: 0.4.0
      reason:
        description: Why, as a CRL reason code.
        type: str
        default: unspecified
        choices: [unspecified, key_compromise, ca_compromise, affiliation_changed, superseded, cessation_of_operation, privilege_withdrawn]
  lifetime:
    description: Validity of each CRL (how far its next update is), as V(30d) or seconds.
    type: str
    default: 30d
  renew_before:
    description: Re-sign the CRLs when this little of their lifetime is left, as a duration (V(20d)) or a share (V(66%)).
    type: str
    default: 20d
"""

EXAMPLES = r"""
- name: Revoke a compromised host's certificate and publish the CRLs
  mtls.fleet.crl:
    ca_path: /var/lib/mtls-fleet/ca
    revoke:
      - name: web-3-frontend
        reason: key_compromise
  delegate_to: localhost
  run_once: true
  register: fleet_crl

- name: Keep the CRLs current (re-signed well before they expire)
  mtls.fleet.crl:
    ca_path: /var/lib/mtls-fleet/ca
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
revoked:
  description: The certificates O(revoke) named, one entry per certificate.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name, or null when revoked by serial.
      type: str
    serial:
      description: Serial number, upper-case hex.
      type: str
    reason:
      description: Reason code.
      type: str
    status:
      description: V(revoked), or V(already revoked).
      type: str
resigned:
  description: Why the CRLs were (or in check mode would be) re-signed; null when they were current.
  returned: always
  type: str
  sample: revocations changed
crl:
  description: PEM of every CRL, the content of C(crl.pem) for the hosts.
  returned: always
  type: str
crl_path:
  description: Path of C(crl.pem) on the CA host.
  returned: always
  type: str
crls:
  description: Each CRL's issuer, next update and number of revoked certificates.
  returned: always
  type: list
  elements: dict
next_update:
  description: The earliest next update of the CRLs (UTC, ISO 8601); hosts must have a newer CRL by then.
  returned: always
  type: str
  sample: "2026-12-23T00:00:00Z"
replaced_next_update:
  description:
    - When the CRLs were re-signed, the earliest next update of the ones they replaced (UTC, ISO 8601). A host that
      did not get the new CRLs still accepts what this run revoked until then, and refuses every client after it.
    - Null when nothing was re-signed or there were no CRLs before.
  returned: always
  type: str
  sample: "2026-12-20T00:00:00Z"
  version_added: 0.5.0
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import authority, ledger, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import (
    LOCK_ARGS, PKCS11_ARGS, USER_ERRORS, ca_keys, ca_state_lock, require_cryptography,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_path=dict(type="path", required=True),
            ca_passphrase=dict(type="str", no_log=True),
            revoke=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str"),
                    serial=dict(type="str"),
                    host=dict(type="str"),
                    reason=dict(type="str", default="unspecified", choices=[r.value for r in pki.RevocationReason]),
                ),
            ),
            lifetime=dict(type="str", default=revocation.DEFAULT_CRL_LIFETIME),
            renew_before=dict(type="str", default=revocation.DEFAULT_CRL_RENEW_BEFORE),
            **LOCK_ARGS,
            **PKCS11_ARGS,
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    now = pki.utcnow()
    if module.check_mode and not authority.ca_exists(params["ca_path"]):
        module.exit_json(changed=True, revoked=[], resigned="no CRL yet (the CA does not exist yet)", crl="",
                         crl_path=os.path.join(params["ca_path"], revocation.CRL_FILE), crls=[], next_update=None, replaced_next_update=None)
    try:
        requests = [revocation.RevokeRequest.parse(raw, index) for index, raw in enumerate(params["revoke"])]
        lifetime = pki.parse_duration(params["lifetime"], "lifetime")
        renew_before = pki.RenewBefore.parse(params["renew_before"])
        if renew_before.window(lifetime) >= lifetime:
            raise pki.PKIError(f"renew_before ({params['renew_before']}) must be shorter than lifetime ({params['lifetime']})")
        with ca_state_lock(module, params["ca_path"], "mtls.fleet.crl"), ca_keys(params, params["ca_passphrase"]) as keys:
            revoked = revocation.revoke(params["ca_path"], requests, keys, now, module.check_mode)
            if not module.check_mode:
                ledger.record_revocations(params["ca_path"], revoked, keys, now)
            result = revocation.ensure_crls(params["ca_path"], keys, lifetime, renew_before, now, module.check_mode)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {params['ca_path']}: {exc}")
    crl_path = os.path.join(params["ca_path"], revocation.CRL_FILE)
    output = dict(
        changed=result.changed or any(entry["status"] == "revoked" for entry in revoked),
        revoked=revoked,
        resigned=result.reason,
        crl=result.pem.decode(),
        crl_path=crl_path,
        crls=result.crls,
        next_update=min((c["next_update"] for c in result.crls), default=None),
        replaced_next_update=result.replaced_next_update,
    )
    if module._diff and output["changed"]:
        output["diff"] = dict(before_header=crl_path, after_header=crl_path, before="", after=revocation.diff_text(revoked, result.reason))
    module.exit_json(**output)


if __name__ == "__main__":
    main()
