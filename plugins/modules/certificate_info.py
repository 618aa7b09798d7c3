#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_info
short_description: Report on installed certificates and whether they are due for renewal
version_added: 0.1.0
description:
  - Read-only; runs on any host. For each certificate file (and, optionally, its key) reports the
    subject, SANs, issuer, serial, fingerprint, validity, days left, whether the key matches,
    whether the chain verifies against a trust bundle, file modes and owners, and the renewal
    verdict with its reason, decided exactly as M(mtls.fleet.certificates) decides it.
  - Never returns key material.
  - "Its action plugin reads the files with one shell command on the host (C(sh), C(stat), C(cat),
    and C(openssl pkey -pubout) for each key, so only a key's public half leaves the host) and judges
    them on the controller with this module's own code and the controller's clock: no Python starts
    on the host. Whatever that reading cannot settle (a symlink, a file that is not a regular file,
    a key C(openssl) cannot read or no C(openssl), a path with C(~) or C($), bad options, C(async),
    a connection or become method that cannot take the script on its input as pipelining does)
    runs the module on the host instead, which reports it as always."
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.endpoints
attributes:
  action:
    support: full
  async:
    support: full
  bypass_host_loop:
    support: none
options:
  certificates:
    description: The certificates to inspect.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label for the report, for example the service name. Defaults to the path.
        type: str
      path:
        description: Certificate file (leaf first, then any intermediates).
        type: path
        required: true
      privatekey_path:
        description: Private key file to check against the certificate.
        type: path
      subject_alt_name:
        description:
          - What the certificate must hold, as in M(mtls.fleet.certificates). When given, a
            difference gives the verdict V(sans_changed) (and likewise for the options below).
        type: list
        elements: str
      common_name:
        description: Expected common name.
        type: str
      profile:
        description: Expected profile, V(server), V(client) or V(service).
        type: str
      key_type:
        description: Expected key type.
        type: str
  ca_bundle_path:
    description: Trust bundle to verify every chain against. Without it chains are not verified.
    type: path
  crl_path:
    description:
      - The host's CRL file (as installed by the mtls_certs role), to report when it needs
        replacing. nginx refuses every client once its CRL is past its next update.
    type: path
  renew_before:
    description: Renewal window, as in M(mtls.fleet.certificates).
    type: str
    default: 33%
seealso:
  - module: mtls.fleet.certificates
"""

EXAMPLES = r"""
- name: Inspect this host's service certificate
  mtls.fleet.certificate_info:
    ca_bundle_path: /etc/mtls/ca-bundle.pem
    certificates:
      - name: web
        path: /etc/mtls/web/cert.pem
        privatekey_path: /etc/mtls/web/key.pem
        subject_alt_name: [DNS:web.svc.example.com]
  register: web_cert

- name: Fail when it is due
  ansible.builtin.assert:
    that: not web_cert.certificates[0].renew
    fail_msg: "{{ web_cert.certificates[0].reason }}: {{ web_cert.certificates[0].detail }}"
"""

RETURN = r"""
served:
  description:
    - One entry per endpoint of O(endpoints), with the endpoint's options and the certificate it serves. Each is
      called on C(127.0.0.1) with a TLS handshake that offers no client certificate and trusts any server
      certificate, so a certificate the CA never issued is read too. With endpoints, the module runs on the host.
  returned: always
  type: list
  elements: dict
  version_added: 0.5.0
  contains:
    serial:
      description: The served certificate's serial (upper-case hex), or null when the endpoint did not answer.
      type: str
    not_after:
      description: Its expiry (UTC, ISO 8601).
      type: str
    error:
      description: Why nothing was read (connection refused, a TLS failure), else null.
      type: str
cas:
  description:
    - The CAs this host relies on, each once, soonest expiry first - the roots of O(ca_bundle_path) and the
      intermediates the certificate files carry. When one expires, every certificate under it stops working.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(root) (self-signed) or V(intermediate).
      type: str
    subject:
      description: The CA's subject (RFC 4514).
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint of the CA certificate.
      type: str
    not_after:
      description: Expiry (UTC, ISO 8601).
      type: str
    not_after_timestamp:
      description: Expiry as a Unix timestamp.
      type: int
    days_left:
      description: Days until expiry.
      type: float
crl:
  description: The CRL file of O(crl_path).
  returned: when O(crl_path) is given
  type: dict
  contains:
    exists:
      description: Whether the file exists.
      type: bool
    next_update:
      description: The earliest next update of its CRLs, UTC, ISO 8601.
      type: str
    next_update_timestamp:
      description: The same, in seconds since the epoch.
      type: int
    days_left:
      description: Days until then.
      type: float
    issuers:
      description: The issuer of each CRL.
      type: list
      elements: str
certificates:
  description: One entry per requested certificate, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The label given, or the path.
      type: str
    exists:
      description: Whether a readable certificate is there.
      type: bool
    subject:
      description: Subject, RFC 4514.
      type: str
    subject_alt_name:
      description: SANs in V(DNS:), V(IP:), V(URI:) form, sorted.
      type: list
      elements: str
    issuer:
      description: Issuer, RFC 4514.
      type: str
    serial:
      description: Serial, upper-case hex.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated upper-case hex.
      type: str
    not_before:
      description: Start of validity, UTC, ISO 8601.
      type: str
    not_after:
      description: Expiry, UTC, ISO 8601.
      type: str
    not_after_timestamp:
      description: Expiry as seconds since the epoch (what Prometheus expects).
      type: int
    days_left:
      description: Days until expiry (negative once expired).
      type: float
    profile:
      description: V(server), V(client), V(service), or null for another EKU combination.
      type: str
    key_type:
      description: Key type of the certificate.
      type: str
    key_matches:
      description: Whether the private key belongs to the certificate.
      type: bool
      returned: when privatekey_path is given and the certificate exists
    chain_verified:
      description: Whether the chain verifies against O(ca_bundle_path) now.
      type: bool
      returned: when O(ca_bundle_path) is given and the certificate exists
    chain_problem:
      description: Why the chain does not verify.
      type: str
      returned: when O(ca_bundle_path) is given and the certificate exists
    file:
      description: Mode, owner and group of the certificate file.
      type: dict
    privatekey:
      description: Mode, owner and group of the key file; null if it is missing.
      type: dict
      returned: when privatekey_path is given
    renew:
      description: Whether the certificate is due for (re)issue.
      type: bool
    reason:
      description: Why, as in M(mtls.fleet.certificates); null when not due.
      type: str
    detail:
      description: The reason in words.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import certinfo, pki
from ansible_collections.mtls.fleet.plugins.module_utils.module_support import USER_ERRORS, require_cryptography


def main():
    module = AnsibleModule(argument_spec=certinfo.ARGUMENT_SPEC, supports_check_mode=True)
    require_cryptography(module)
    try:
        result = certinfo.report(module.params, pki.utcnow())
    except USER_ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
