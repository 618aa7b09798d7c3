#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca
short_description: Create or keep the fleet's certificate authority on the CA host
version_added: 0.1.0
description:
  - Creates a self-signed root CA and, optionally, an intermediate CA signed by it, in one
    directory on the CA host (by default the controller). The CA keys never leave that host.
  - Idempotent and conservative. An existing CA is never replaced, because a new CA would break
    every certificate the fleet holds; differences between the options and the existing CA are
    reported as warnings. Replacing a CA is a rollover (see the C(ca_rollover) playbook).
  - "Files in O(path) (mode 0700): C(root-ca.pem), C(root-ca-key.pem), C(intermediate-ca.pem),
    C(intermediate-ca-key.pem) and C(ca-bundle.pem), the trust bundle hosts install. Keys are
    0600 and written atomically."
  - "CA certificates carry BasicConstraints CA:TRUE (critical, path length 1 on the root, 0 on
    the intermediate), KeyUsage keyCertSign and cRLSign (critical), subject and authority key
    identifiers, and the name constraints, if any (critical)."
  - A CA directory that holds no CA while the fleet already trusts one (see O(fleet_trust)) means
    the CA was lost; nothing is created unless O(new_root=true). Restore it with
    M(mtls.fleet.ca_backup) instead.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca.spec
  - mtls.fleet.ca.lock
  - mtls.fleet.ca.pkcs11
options:
  fleet_trust:
    description:
      - What the fleet's hosts trust now, as the results of reading a C(ca-bundle.pem) on each host
        (each with C(item), the host) with M(ansible.builtin.slurp) (C(content)), or with
        M(ansible.builtin.raw) printing the file when it exists (C(stdout), C(rc)), as the
        C(mtls_ca) role does. A host without that file trusts nothing yet; skipped ones are left
        out; an unreachable host, or any other failure to read the file, stops the module unless
        O(new_root=true), since what that host trusts is unknown.
      - Read only when O(path) holds no CA. If any host trusts a root, the module fails before
        creating anything, naming the hosts and the root, unless O(new_root=true).
    type: list
    elements: dict
    default: []
  new_root:
    description:
      - Create a new CA even though hosts in O(fleet_trust) trust another root (the old CA is
        lost for good). The new C(ca-bundle.pem) keeps the roots the hosts trust beside the new
        one, so services keep accepting each other while the fleet is re-issued; remove them
        afterwards.
    type: bool
    default: false
seealso:
  - module: mtls.fleet.certificates
  - module: mtls.fleet.certificate_info
"""

EXAMPLES = r"""
- name: Create the fleet CA on the controller
  mtls.fleet.ca:
    path: /etc/mtls-fleet/ca
    intermediate: true
    name_constraints:
      dns: [svc.example.com]
      uris: [example.org]
    passphrase: "{{ vault_mtls_ca_passphrase }}"
  delegate_to: localhost
  run_once: true
  register: fleet_ca

- name: Create the fleet CA with its keys in a PKCS#11 token (made there, never extractable)
  mtls.fleet.ca:
    path: /var/lib/mtls-fleet/ca
    intermediate: true
    pkcs11:
      module: /usr/lib/softhsm/libsofthsm2.so
      token_label: fleet-ca
      pin: "{{ vault_mtls_ca_token_pin }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
created:
  description: What this run created, from V(root) and V(intermediate).
  returned: always
  type: list
  elements: str
  sample: [root, intermediate]
bundle_path:
  description: Path of the trust bundle (PEM of every trusted root) to install on hosts.
  returned: always
  type: str
  sample: /etc/mtls-fleet/ca/ca-bundle.pem
root:
  description: Facts about the root CA certificate (no key material).
  returned: always
  type: dict
  contains:
    subject:
      description: Subject in RFC 4514 form.
      type: str
      sample: CN=mtls.fleet root CA
    serial:
      description: Serial number, upper-case hex.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated upper-case hex, as openssl prints it.
      type: str
    not_after:
      description: Expiry, UTC, ISO 8601.
      type: str
      sample: "2036-11-20T12:00:00Z"
intermediate:
  description: Facts about the intermediate CA certificate, like RV(root).
  returned: when O(intermediate=true)
  type: dict
certificate:
  description: PEM of the root certificate.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import authority, ledger, pki
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import (
    CA_SPEC_ARGS, LOCK_ARGS, PKCS11_ARGS, USER_ERRORS, ca_keys, ca_spec, ca_state_lock, require_ca_directory, require_cryptography,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(CA_SPEC_ARGS, fleet_trust=dict(type="list", elements="dict", default=[]),
                           new_root=dict(type="bool", default=False), **LOCK_ARGS, **PKCS11_ARGS),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    now = pki.utcnow()
    try:
        require_ca_directory(params["path"])
        spec = ca_spec(params)
        fleet_roots = {} if authority.ca_exists(params["path"]) else authority.fleet_roots(params["fleet_trust"])
        authority.refuse_silent_new_root(params["path"], fleet_roots, params["new_root"])
        keep_trusting = [cert for roots in fleet_roots.values() for cert in roots or ()]
        with ca_state_lock(module, params["path"], "mtls.fleet.ca", create=True), ca_keys(params, params["passphrase"]) as keys:
            result = authority.ensure_ca(params["path"], spec, keys, now, check_mode=module.check_mode,
                                         keep_trusting=keep_trusting)
            if not module.check_mode:
                ledger.record_ca_created(params["path"], result.created, keys, now)
    except USER_ERRORS as exc:
        module.fail_json(msg=f"CA {params['path']}: {exc}" if params["path"] else str(exc))
    for warning in result.warnings:
        module.warn(warning)

    root = pki.describe(result.root, now)
    output = dict(
        changed=result.changed,
        created=result.created,
        bundle_path=os.path.join(params["path"], authority.BUNDLE),
        root=root,
        certificate=pki.cert_to_pem(result.root).decode(),
    )
    if result.intermediate is not None:
        output["intermediate"] = pki.describe(result.intermediate, now)
    if module._diff and result.created:
        output["diff"] = dict(
            before_header=params["path"], after_header=params["path"], before="",
            after="".join(f"{what}: {pki.describe(cert)['subject']} until {pki.not_after(cert):%Y-%m-%d}\n"
                          for what, cert in (("root", result.root), ("intermediate", result.intermediate))
                          if what in result.created),
        )
    module.exit_json(**output)


if __name__ == "__main__":
    main()
