# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_report
short_description: The fleet's drift table and the CA ledger's verdict
version_added: 0.5.0
description:
  - Joins each host's C(mtls_drift) (from P(mtls.fleet.host_drift#filter)) into one table, one line
    per drift, with what to do about it; and says whether the CA's issuance ledger is intact.
  - Hosts without C(mtls_drift) (not reached) are left out. The ledger's verdict is the
    M(mtls.fleet.ledger_info) result the hosts hold (C(mtls_certs_ledger), read by the C(ledger)
    entry point of role C(mtls_certs)); without one (drift not read), the report is empty.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The fleet's hosts.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
drift: "{{ hostvars | mtls.fleet.drift_report(groups['mtls_hosts']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(findings), C(counts), C(table) (lines), C(alert_lines) (one per drift, and one when the ledger is not intact)
      and C(ledger) (its verdict, or V(null) when no host read it).
  type: dict
"""

from ansible_collections.mtls.fleet.plugins.module_utils import drift


def drift_report(hostvars, hosts):
    record = next((hostvars[host]["mtls_certs_ledger"] for host in hosts if "mtls_certs_ledger" in hostvars[host]), None)
    if record is None:
        return {"findings": [], "counts": drift.counts([]), "table": [], "alert_lines": [], "ledger": None}
    reached = [(host, hostvars[host]["mtls_drift"]["findings"]) for host in hosts if "mtls_drift" in hostvars[host]]
    checked = sum(len(hostvars[host]["mtls_inspected"].get("served", [])) for host in hosts if "mtls_inspected" in hostvars[host])
    return dict(drift.fleet(reached, checked, record["ledger"]), ledger=record["ledger"])


class FilterModule:
    def filters(self):
        return {"drift_report": drift_report}
