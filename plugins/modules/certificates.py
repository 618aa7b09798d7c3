#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificates
short_description: Issue and renew a whole fleet's service certificates in one task
version_added: 0.1.0
description:
  - Runs on the CA host. Takes the list of every certificate the fleet needs and, in one call,
    decides for each whether it must be (re)issued and why, then signs the due ones with the CA
    from M(mtls.fleet.ca).
  - "Decision, per certificate, most serious first: V(missing); V(corrupt); V(key_mismatch) (key
    does not match, or a new CSR); V(issuer_changed) (not signed by the CA that issues now, as after a CA
    rollover); V(revoked) (see M(mtls.fleet.crl)); V(subject_changed), V(sans_changed), V(profile_changed), V(key_type_changed); V(expired);
    V(renew_window) (inside O(renew_before)); V(forced). A change of lifetime alone does not renew."
  - Every request is validated, and checked against the CA's name constraints, O(policy) and the
    CA's own expiry, before anything is written. One bad request fails the task with every
    problem listed by certificate and field, and no file changes.
  - "Central mode (default): keys are generated here, and a renewal rotates the key unless
    O(rotate_key=false). Files: C(<path>/<name>/cert.pem) (leaf followed by the intermediates),
    C(<path>/<name>/key.pem) (0600). C(<path>/<name>) is a symlink to a generation directory
    C(.<name>.gen<N>) (0700), written and synced in full and switched in one rename after the
    run's every certificate was built, so a crash never leaves a key with a certificate it does
    not belong to. The generation replaced is kept (named by C(.<name>.previous))."
  - "CSR mode: a request that carries C(csr) (made on the host by M(mtls.fleet.csr)) gets a
    certificate for the CSR's key, which never reaches the CA. Only the key is taken from the CSR:
    names, profile and lifetime come from the request, never from the CSR."
  - "With C(next_csr) too (the key the host keeps ready, see M(mtls.fleet.csr) O(mtls.fleet.csr#module:next_path)),
    a renewal certifies the next key, so keys made on hosts are new at every renewal as central
    ones are; with O(rotate_key=false) it certifies the key in use again. A certificate in the
    store is current for either key."
  - Leaves carry BasicConstraints CA:FALSE and KeyUsage digitalSignature (plus keyEncipherment for
    RSA), both critical; the EKU of their profile; the SANs; random serials; a start backdated
    5 minutes for clock skew.
  - "A pass with nothing due, on a CA host reached by the local connection without become (the
    controller, the default), is judged by the action plugin with this module's code and the
    module is not started: Ansible's cost of starting a module exceeds judging a whole fleet. No
    CA key is opened then (no passphrase, no token session). Any other run, or any doubt, runs the module."
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.ca
  - mtls.fleet.ca.lock
  - mtls.fleet.ca.pkcs11
attributes:
  action:
    support: full
  async:
    support: full
  bypass_host_loop:
    support: none
options:
  path:
    description: Directory of issued certificates on the CA host. Defaults to C(<ca_path>/issued).
    type: path
  certificates:
    description:
      - The certificates to issue or keep. Per-request options left out take the module-level
        value of the same name.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name; also the directory name under O(path). Letters, digits, C(.), C(_), C(-).
        type: str
        required: true
      common_name:
        description: Subject common name. Defaults to O(certificates[].name).
        type: str
      subject_alt_name:
        description:
          - Names clients dial, each as V(DNS:name), V(IP:address) or V(URI:uri), for example a
            SPIFFE identity V(URI:spiffe://example.org/web). TLS clients check only these.
        type: list
        elements: str
        required: true
      profile:
        description: V(server), V(client) or V(service) (both). Defaults to O(profile).
        type: str
      key_type:
        description: One of the O(key_type) choices. Defaults to O(key_type). Ignored with O(certificates[].csr).
        type: str
      lifetime:
        description: Defaults to O(lifetime).
        type: str
      renew_before:
        description: Defaults to O(renew_before).
        type: str
      rotate_key:
        description: Defaults to O(rotate_key).
        type: bool
      csr:
        description: PEM certificate signing request made on the host (CSR mode), for the key it serves with.
        type: str
      next_csr:
        description:
          - PEM certificate signing request for the key the host keeps ready for its next certificate
            (the RV(mtls.fleet.csr#module:next_csr) of M(mtls.fleet.csr)).
          - A renewal certifies this key unless keys are kept. Without O(certificates[].csr) (the host
            has no key in use yet) the first certificate is for it.
        type: str
      force:
        description: Renew this certificate now.
        type: bool
        default: false
      host:
        description:
          - The inventory host this certificate is for. The store records it, and refuses a request
            of another host for the same name (naming both) instead of handing that host's
            certificate and key to it, in one run or across runs (C(--limit)).
          - P(mtls.fleet.certificate_requests#filter) sets it. An entry issued before the store recorded
            hosts is matched by its common name until it is next renewed.
        type: str
        version_added: 0.4.0
  profile:
    description: Default profile, V(service) being both server and client, as mTLS peers need.
    type: str
    default: service
    choices: [server, client, service]
  key_type:
    description: Default key type of new keys.
    type: str
    default: ecdsa-p256
    choices: [ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519]
  lifetime:
    description: Default lifetime, as V(90d), V(24h), V(2w) or seconds.
    type: str
    default: 90d
  renew_before:
    description:
      - Default renewal window, as a share of the certificate's lifetime (V(33%), the last third,
        as cert-manager does) or a duration (V(30d)).
    type: str
    default: 33%
  rotate_key:
    description: Generate a new private key whenever a certificate is renewed (central mode).
    type: bool
    default: true
  policy:
    description:
      - What this CA agrees to sign, whatever the requests ask. Empty lists allow any name (the
        CA's name constraints still apply).
    type: dict
    suboptions:
      allowed_dns:
        description: Exact names, or V(*.example.com) for any name under example.com.
        type: list
        elements: str
        default: []
      allowed_ips:
        description: IP networks in CIDR form.
        type: list
        elements: str
        default: []
      allowed_uris:
        description: URI prefixes, for example V(spiffe://example.org/).
        type: list
        elements: str
        default: []
      max_lifetime:
        description: Longest lifetime any request may ask for.
        type: str
  force:
    description: Renew every certificate now (a fleet-wide rotation).
    type: bool
    default: false
  renew_revoked:
    description:
      - Renew certificates whose serial the CA revoked (reason V(revoked)). Leave it on for a
        rollout run after the host was fixed; the rotation playbook turns it off, so a routine or
        scheduled run never hands a compromised host a new certificate. Off, a revoked
        certificate is reported (status V(unchanged), reason V(revoked)) and kept.
    type: bool
    default: true
  return_content:
    description: Include each certificate's PEM (never a key) in the result.
    type: bool
    default: false
seealso:
  - module: mtls.fleet.ca
  - module: mtls.fleet.csr
  - module: mtls.fleet.certificate_info
"""

EXAMPLES = r"""
- name: Issue every service certificate of the play in one task
  mtls.fleet.certificates:
    ca_path: /etc/mtls-fleet/ca
    ca_passphrase: "{{ vault_mtls_ca_passphrase }}"
    policy:
      allowed_dns: ["*.svc.example.com"]
      allowed_uris: ["spiffe://example.org/"]
      max_lifetime: 90d
    certificates: >-
      {{ ansible_play_hosts | map('extract', hostvars, 'mtls_certificate_request') | list }}
  delegate_to: localhost
  run_once: true
  register: issued

- name: One request written out
  mtls.fleet.certificates:
    ca_path: /etc/mtls-fleet/ca
    certificates:
      - name: web-1
        subject_alt_name:
          - DNS:web-1.svc.example.com
          - IP:10.0.0.11
          - URI:spiffe://example.org/web
        profile: service
        lifetime: 30d
  delegate_to: localhost

- name: Renew everything now (fleet-wide rotation)
  mtls.fleet.certificates:
    ca_path: /etc/mtls-fleet/ca
    certificates: "{{ fleet_requests }}"
    force: true
  delegate_to: localhost
"""

RETURN = r"""
certificates:
  description: One entry per request, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The request's name.
      type: str
    status:
      description: V(issued) (new), V(renewed) (replaced an existing one) or V(unchanged).
      type: str
      sample: renewed
    reason:
      description: Why it was (re)issued, one of the reasons above; null when unchanged.
      type: str
      sample: renew_window
    detail:
      description: The reason in words, or until when an unchanged certificate is valid.
      type: str
      sample: "expires 2026-03-01 12:00 UTC, inside renew_before (29.7d)"
    serial:
      description: Serial of the certificate now in place (upper-case hex, as nginx logs it); null for a renewal only planned in check mode.
      type: str
    not_after:
      description: Expiry, UTC, ISO 8601.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated upper-case hex.
      type: str
    cert_path:
      description: Path of the certificate file (leaf + intermediates) on the CA host.
      type: str
    key_path:
      description: Path of the private key on the CA host; null in CSR mode.
      type: str
    certificate:
      description: The certificate file's PEM.
      type: str
      returned: when O(return_content=true)
summary:
  description: How many certificates were issued, renewed and left unchanged.
  returned: always
  type: dict
  sample: {issued: 2, renewed: 1, unchanged: 40}
bundle_path:
  description: Path of the CA's trust bundle on the CA host.
  returned: always
  type: str
bundle:
  description: PEM of the trust bundle hosts install (public); empty in check mode before the CA exists.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import pki
from ansible_collections.mtls.fleet.plugins.module_utils.bulk_issuance import ARGUMENT_SPEC, run
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import USER_ERRORS, require_cryptography


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    require_cryptography(module)
    try:
        result = run(module.params, pki.utcnow(), check_mode=module.check_mode, diff=module._diff)
    except USER_ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
