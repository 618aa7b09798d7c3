# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rotation_tables
short_description: A rotation's plan or summary, as lines of a table
version_added: 0.4.0
description:
  - With O(issued), the plan, shown before anything changes, one line per certificate of O(hosts)
    - its serial and days left on the host, the verdict on the host's copy, and what the rollout
    will do (C(keep), C(renew) with the reason, C(renew (forced)), or install the newer copy the
    CA store holds).
  - Without it, the summary, shown at the end - the serial each certificate had and the one served
    now, and the host's outcome (C(rotated), C(kept), C(rolled back), C(not started), C(lost during
    its rollout), C(not reached)).
  - Reads what the rotate playbook recorded per host - C(mtls_inspected) (the certificates read
    before), C(mtls_rotate_serving), C(mtls_rotate_outcome), and for the plan the host's requests
    and whether it was forced. A list of lines, which the default callback prints one per line.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts, issued
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
  issued:
    description: For the plan, the issuance's registered result (the CA store's copy of each certificate).
    type: dict
"""

EXAMPLES = r"""
- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ hostvars | mtls.fleet.rotation_tables(ansible_play_hosts, issued) }}"
  run_once: true

- name: Show what each host serves now
  ansible.builtin.debug:
    msg: "{{ hostvars | mtls.fleet.rotation_tables(groups['mtls_hosts']) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The table's lines, the header first.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import tables
from ansible_collections.mtls.fleet.plugins.module_utils.rotation_record import outcome_of


def rotation_tables(hostvars, hosts, issued=None):
    if issued is not None:
        return tables.rotation_plan([(host, hostvars[host]["__mtls_rotate_forced"], hostvars[host]["mtls_inspected"]["certificates"],
                                      hostvars[host]["mtls_certs_requests"]) for host in hosts], issued)
    summary = []
    for host in hosts:
        facts = hostvars[host]
        inspected = facts.get("mtls_inspected") or {}
        summary.append((host, inspected.get("certificates") or facts.get("mtls_certs_services") or [],
                        facts.get("mtls_rotate_serving") or [], outcome_of(facts)))
    return tables.rotation_summary(summary)


class FilterModule:
    def filters(self):
        return {"rotation_tables": rotation_tables}
