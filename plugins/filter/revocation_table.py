# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: revocation_table
short_description: What a revocation recorded, as lines of a table
version_added: 0.4.0
description:
  - One line per entry of a M(mtls.fleet.crl) result's C(revoked) (certificate, serial, reason,
    status - C(revoked) or C(already revoked)), then how many the CRLs hold and their next update.
  - A list of lines, which the default callback prints one per line.
author: mtls.fleet developers (@mtls-fleet)
positional: check_mode
options:
  _input:
    description: A registered M(mtls.fleet.crl) result.
    type: dict
    required: true
  check_mode:
    description: Whether the run is in check mode (nothing was recorded).
    type: bool
    required: true
"""

EXAMPLES = r"""
- name: Show what was revoked
  ansible.builtin.debug:
    msg: "{{ crl | mtls.fleet.revocation_table(ansible_check_mode) }}"
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import tables


class FilterModule:
    def filters(self):
        return {"revocation_table": tables.revocation}
