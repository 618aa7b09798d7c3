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
requirements:
  - cryptography >= 38.0
"""
