"""Shared test helpers: a fixed clock and small builders over the pure core."""

import datetime

from ansible_collections.mtls.fleet.plugins.module_utils import pki

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def make_issuer(now=NOW, intermediate=False, key_type=pki.KeyType.ECDSA_P256, constraints=None, lifetime=3650 * DAY):
    root_key = key_type.generate()
    root = pki.build_ca("Test Root", root_key, lifetime, now, path_length=1, constraints=constraints)
    if not intermediate:
        return pki.Issuer(cert=root, key=root_key, chain=(), roots=(root,))
    int_key = key_type.generate()
    inter = pki.build_ca("Test Intermediate", int_key, lifetime / 2, now, path_length=0,
                         constraints=constraints, issuer=root, issuer_key=root_key)
    return pki.Issuer(cert=inter, key=int_key, chain=(inter,), roots=(root,))


def spec(name="web", sans=("DNS:web.example.com",), **kw):
    return pki.LeafSpec(name=name, common_name=kw.pop("common_name", name), sans=tuple(sans), **kw)


def issue(issuer, leaf_spec=None, now=NOW, key=None):
    leaf_spec = leaf_spec or spec()
    key = key or leaf_spec.key_type.generate()
    return pki.build_leaf(leaf_spec, key.public_key(), issuer, now), key
