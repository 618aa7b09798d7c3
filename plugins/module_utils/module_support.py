# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every mtls.fleet module adapter shares: the dependency guard and error reporting."""

from __future__ import annotations

import os
from contextlib import contextmanager

from ansible.module_utils.basic import missing_required_lib

from .authority import CASpec
from .custody import DEFAULT_KEY_LABEL, CAKeys, open_token
from .files import FileError, refuse_unsafe_directory
from .locking import ca_lock
from .requirements import MINIMUM_CRYPTOGRAPHY_VERSION, cryptography_is_recent
from .pki import CRYPTOGRAPHY_IMPORT_ERROR, KeyType, NameConstraints, PKIError, parse_duration

USER_ERRORS = (PKIError, FileError)  # includes locking.LockTimeout
KEY_TYPES = [key_type.value for key_type in KeyType]


def require_cryptography(module):
    """Fail the task with install advice unless a recent enough cryptography is importable."""
    if CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(
            msg=missing_required_lib(f"cryptography >= {MINIMUM_CRYPTOGRAPHY_VERSION}"), exception=CRYPTOGRAPHY_IMPORT_ERROR
        )
    import cryptography  # pylint: disable=import-outside-toplevel

    if not cryptography_is_recent(cryptography.__version__):
        module.fail_json(
            msg=f"cryptography {cryptography.__version__} is too old on this host; "
            f"install cryptography >= {MINIMUM_CRYPTOGRAPHY_VERSION} (mtls.fleet.host_requirements names the package)"
        )


CA_SPEC_ARGS = dict(
    path=dict(type="path", required=True),
    common_name=dict(type="str", default="mtls.fleet root CA"),
    key_type=dict(type="str", default="ecdsa-p256", choices=KEY_TYPES),
    lifetime=dict(type="str", default="3650d"),
    intermediate=dict(type="bool", default=False),
    intermediate_common_name=dict(type="str", default="mtls.fleet intermediate CA"),
    intermediate_lifetime=dict(type="str", default="1825d"),
    name_constraints=dict(
        type="dict",
        options=dict(
            dns=dict(type="list", elements="str", default=[]),
            ips=dict(type="list", elements="str", default=[]),
            uris=dict(type="list", elements="str", default=[]),
        ),
    ),
    passphrase=dict(type="str", no_log=True),
)


def ca_spec(params) -> CASpec:
    """The CASpec of a module's CA_SPEC_ARGS parameters (PKIError names a bad one)."""
    return CASpec(
        common_name=params["common_name"],
        key_type=KeyType.parse(params["key_type"]),
        lifetime=parse_duration(params["lifetime"], "lifetime"),
        intermediate=params["intermediate"],
        intermediate_common_name=params["intermediate_common_name"],
        intermediate_lifetime=parse_duration(params["intermediate_lifetime"], "intermediate_lifetime"),
        name_constraints=NameConstraints.parse(params["name_constraints"]),
    )


# Every module that changes CA state takes these (doc fragment mtls.fleet.ca.lock).
LOCK_ARGS = dict(lock_timeout=dict(type="float", default=60.0))


def require_ca_directory(path: str) -> None:
    """An empty path is bad input, not a directory: most often a variable or an environment lookup
    it was templated from is unset. Left alone it would be taken as a place that holds no CA."""
    if not path:
        raise FileError("the CA directory's path is empty; set mtls_ca_path (or the module's CA path option). "
                        "Is a variable or environment lookup it is templated from unset?")


def ca_state_lock(module, path, name, create=False):
    """Hold the CA directory's lock for the module's whole read-modify-write (shared in check mode)."""
    return ca_directory_lock(path, name, module.params["lock_timeout"], exclusive=not module.check_mode, create=create)


def ca_directory_lock(path, name, timeout, exclusive, create=False):
    """The CA directory's lock, once its path is known to be safe: exclusive to write, shared to read.

    create: make the directory first (0700, writers only), so two runs creating the same CA take turns too.
    """
    require_ca_directory(path)
    if create and exclusive and not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    refuse_unsafe_directory(path, 0o700)
    return ca_lock(path, name, timeout, exclusive=exclusive)


# Every module that signs with the CA's keys takes these (doc fragment mtls.fleet.ca.pkcs11).
PKCS11_ARGS = dict(pkcs11=dict(type="dict", options=dict(
    module=dict(type="path", required=True),
    token_label=dict(type="str", required=True, no_log=False),  # labels name things, they are no secrets
    pin=dict(type="str", required=True, no_log=True),
    key_label=dict(type="str", default=DEFAULT_KEY_LABEL, no_log=False),
)))


@contextmanager
def ca_keys(params, passphrase):
    """The CA's keys as the module's options place them (files, or a logged-in token session)."""
    token = params["pkcs11"]
    keys = CAKeys(passphrase, token and open_token(token["module"], token["token_label"], token["pin"], token["key_label"]))
    try:
        yield keys
    finally:
        keys.close()
