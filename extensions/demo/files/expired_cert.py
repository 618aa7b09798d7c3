"""Test fixture: a client certificate from the fleet's own CA, for an allowed identity, that
expired yesterday; only its expiry should make servers refuse it.

    python3 expired_cert.py CA_PATH OUT_DIR IDENTITY
"""

import datetime
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", ".build", "collections"))

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys  # noqa: E402  pylint: disable=wrong-import-position


def main():
    ca_path, out_dir, identity = sys.argv[1:4]
    issuer = authority.load_issuer(ca_path, CAKeys())
    then = pki.utcnow() - datetime.timedelta(days=3)
    spec = pki.LeafSpec(name=identity, common_name=identity, sans=(f"URI:spiffe://example.org/{identity}",),
                        profile=pki.Profile.CLIENT, lifetime=datetime.timedelta(days=2))
    key = spec.key_type.generate()
    cert = pki.build_leaf(spec, key.public_key(), issuer, then)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(out_dir, "cert.pem"), "wb") as handle:
        handle.write(pki.chain_to_pem((cert, *issuer.chain)))
    with open(os.open(os.path.join(out_dir, "key.pem"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(pki.key_to_pem(key))


if __name__ == "__main__":
    main()
