# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_path:
    description:
      - Directory of the CA on the CA host, as created by M(mtls.fleet.ca).
      - Signing uses the intermediate CA when there is one, otherwise the root.
    type: path
    required: true
  ca_passphrase:
    description:
      - Passphrase of the CA keys, when M(mtls.fleet.ca) encrypted them.
    type: str
"""

    # The CA's own settings: mtls.fleet.ca creates a CA from them, mtls.fleet.ca_rollover the next one.
    SPEC = r"""
options:
  path:
    description: Directory that holds the CA (mode 0700).
    type: path
    required: true
  common_name:
    description: Common name of the root CA.
    type: str
    default: mtls.fleet root CA
  key_type:
    description: Key type of the CA keys. P-256 is accepted by every TLS stack we know of.
    type: str
    default: ecdsa-p256
    choices: [ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519]
  lifetime:
    description: Lifetime of the root, as V(3650d), V(520w), or seconds.
    type: str
    default: 3650d
  intermediate:
    description:
      - Also create an intermediate CA that signs the service certificates, so the root key is
        used only to sign the intermediate.
      - Service certificate files then hold leaf + intermediate; nginx needs C(ssl_verify_depth) 2.
    type: bool
    default: false
  intermediate_common_name:
    description: Common name of the intermediate CA.
    type: str
    default: mtls.fleet intermediate CA
  intermediate_lifetime:
    description: Lifetime of the intermediate; never beyond the root's expiry.
    type: str
    default: 1825d
  name_constraints:
    description:
      - Permitted subtrees written into the CA certificates, so clients themselves refuse any name
        outside them. The CA also refuses to issue such names.
      - An empty list leaves that name type unconstrained.
    type: dict
    suboptions:
      dns:
        description: DNS domains; each permits the domain and all its subdomains.
        type: list
        elements: str
        default: []
      ips:
        description: IP networks in CIDR form, for example V(10.0.0.0/8).
        type: list
        elements: str
        default: []
      uris:
        description: URI hosts, for example a SPIFFE trust domain V(example.org); V(.example.org) permits subdomains only.
        type: list
        elements: str
        default: []
  passphrase:
    description:
      - Encrypts the CA keys at rest (and decrypts existing ones). Keep it in Ansible Vault.
    type: str
"""

    # Every module that changes CA state holds the CA directory's lock while it works.
    LOCK = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for another run that is changing the same CA directory (a revocation while a
        scheduled rotation issues, two operators at once). Every module that changes CA state holds an
        exclusive lock on C(<ca>/.lock) for its whole read-modify-write, so no change is lost; check mode
        takes a shared lock.
      - When the wait runs out the task fails, naming the run that holds the lock. A run that dies
        releases its lock at once.
    type: float
    default: 60
"""

    # Where the CA keys live: files (default) or a PKCS#11 token. Every module that signs takes it.
    PKCS11 = r"""
options:
  pkcs11:
    description:
      - Keep the CA keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2) instead of files.
      - New CA keys (a new CA, a rollover's next CA) are generated inside the token, sensitive and not
        extractable, and every signature (certificates, CRLs, intermediates) is made there. The CA
        directory keeps the certificates, and for each key a file that names the token object (an
        RFC 7512 PKCS#11 URI), never key material.
      - Keys that already exist are read where they are, so an existing CA moves into the token with
        a CA rollover (M(mtls.fleet.ca_rollover)).
      - CA keys in a token are ECDSA P-256 or P-384. Needs the Python library python-pkcs11 on the CA host.
    type: dict
    suboptions:
      module:
        description: Path of the token's PKCS#11 library on the CA host (SoftHSM2 on Debian C(/usr/lib/softhsm/libsofthsm2.so)).
        type: path
        required: true
      token_label:
        description: Label of the token.
        type: str
        required: true
      pin:
        description: User PIN of the token. Keep it in Ansible Vault.
        type: str
        required: true
      key_label:
        description: Prefix of the labels of keys made in the token; the CA's common name follows it.
        type: str
        default: mtls-fleet
requirements:
  - python-pkcs11 >= 0.10 (only with O(pkcs11))
"""
