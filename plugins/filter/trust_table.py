# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: trust_table
short_description: Which CA's clients every endpoint accepts, as lines of a table
version_added: 0.4.0
description:
  - One line per endpoint probed by a CA rollover's trust check (each host's registered
    C(mtls_trust_check), the result of M(mtls.fleet.trust_check)) - host, endpoint, port, and what
    an old-CA client and a new-CA client got (C(accepted) or C(refused)).
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
- name: Show the result
  ansible.builtin.debug:
    msg: "{{ hostvars | mtls.fleet.trust_table(ansible_play_hosts) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import tables


def trust_table(hostvars, hosts):
    return tables.trust([(host, (hostvars[host].get("mtls_trust_check") or {}).get("probes") or []) for host in hosts])


class FilterModule:
    def filters(self):
        return {"trust_table": trust_table}
