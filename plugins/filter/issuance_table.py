# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: issuance_table
short_description: What an issuance did, as lines of a table
version_added: 0.4.0
description:
  - One line per certificate of a M(mtls.fleet.certificates) result (name, status, reason,
    serial, expiry), then the counts. Columns are as wide as their content.
  - A list of lines, which the default callback prints one per line.
author: mtls.fleet developers (@mtls-fleet)
options:
  _input:
    description: A registered M(mtls.fleet.certificates) result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show what was issued, renewed or kept, and why
  ansible.builtin.debug:
    msg: "{{ issued | mtls.fleet.issuance_table }}"
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
  sample: ["CERTIFICATE  STATUS  REASON  SERIAL              NOT AFTER", "web-1-web    issued  new     3F2A9C0D11E2B7A4..  2027-03-01T10:00:00Z",
           "1 issued, 0 renewed, 0 unchanged"]
"""

from ansible_collections.mtls.fleet.plugins.module_utils import tables


class FilterModule:
    def filters(self):
        return {"issuance_table": tables.issuance}
