# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_table
short_description: What every endpoint serves, as lines of a table
version_added: 0.4.0
description:
  - One line per mTLS endpoint its host transaction proved (the registered C(mtls_certs_result) of
    M(mtls.fleet.host_transaction)) - host, endpoint, port, the serial served, its expiry and the
    transaction's outcome; a host without endpoints gets a line per service installed. Hosts
    without a result (check mode before a first rollout) are left out. Columns are as wide as their content.
  - A list of lines, which the default callback prints one per line.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to show, in this order.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Show the fleet
  ansible.builtin.debug:
    msg: "{{ hostvars | mtls.fleet.fleet_table(ansible_play_hosts) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import tables


def fleet_table(hostvars, hosts):
    return tables.fleet([(host, hostvars[host].get("mtls_certs_result") or {}) for host in hosts])


class FilterModule:
    def filters(self):
        return {"fleet_table": fleet_table}
