# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every mtls.fleet module adapter shares: the dependency guard and error reporting."""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.compat.version import LooseVersion

from .files import FileError
from .pki import CRYPTOGRAPHY_IMPORT_ERROR, MINIMUM_CRYPTOGRAPHY_VERSION, KeyType, PKIError

USER_ERRORS = (PKIError, FileError)
KEY_TYPES = [key_type.value for key_type in KeyType]


def require_cryptography(module):
    """Fail the task with install advice unless a recent enough cryptography is importable."""
    if CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(
            msg=missing_required_lib(f"cryptography >= {MINIMUM_CRYPTOGRAPHY_VERSION}"), exception=CRYPTOGRAPHY_IMPORT_ERROR
        )
    import cryptography  # pylint: disable=import-outside-toplevel

    if LooseVersion(cryptography.__version__) < LooseVersion(MINIMUM_CRYPTOGRAPHY_VERSION):
        module.fail_json(
            msg=f"cryptography {cryptography.__version__} is too old on this host; "
            f"install cryptography >= {MINIMUM_CRYPTOGRAPHY_VERSION} (Debian 12: python3-cryptography)"
        )
