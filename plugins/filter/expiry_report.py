# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: expiry_report
short_description: The fleet's expiry report, from what each host's certificates are
version_added: 0.4.0
description:
  - Joins the M(mtls.fleet.certificate_info) results the report playbook registered on each host
    (C(mtls_inspected)) into one record - every certificate and every host's CRL file, soonest
    expiry first; those that need attention (expiry within O(threshold_days), or a verdict of
    C(missing), C(corrupt), C(key_mismatch), C(issuer_changed), C(expired)); and the table.
  - Hosts without C(mtls_inspected) (not reached) are left out.
  - When the hosts hold the rotation record (C(mtls_certs_rotations), read by the C(rotations)
    entry point of role C(mtls_certs)), also when each host last rotated successfully; a host whose
    last success is older than O(rotation_max_age_days), or that has none, needs attention too.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts, threshold_days, rotation_max_age_days
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
  threshold_days:
    description: Certificates and CRLs that expire within this many days need attention.
    type: int
    required: true
  rotation_max_age_days:
    description: A host whose last successful rotation is older than this needs attention; V(0) judges none.
    type: float
    default: 0
    version_added: 0.4.0
"""

EXAMPLES = r"""
report: "{{ hostvars | mtls.fleet.expiry_report(groups['mtls_hosts'], 14) }}"
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    rows:
      description:
        - One per certificate (C(host), C(service), C(serial), C(not_after), C(days_left), C(issuer),
          C(verdict), C(detail)) and one per host's CRL file (service C((CRLs))), soonest expiry first.
      type: list
      elements: dict
    alerts:
      description: The rows that need attention.
      type: list
      elements: dict
    alert_lines:
      description: One line per alert - host/service, verdict and detail.
      type: list
      elements: str
    table:
      description: The table's lines, header first, counts last.
      type: list
      elements: str
    rotations:
      description:
        - With the rotation record, one per host - C(host), C(last_run), C(last_outcome), C(last_success),
          C(days_since_success).
      type: list
      elements: dict
    rotation_table:
      description: With the rotation record, each host's last rotation run, its outcome and its last success, counts last.
      type: list
      elements: str
"""

import datetime

from ansible_collections.mtls.fleet.plugins.module_utils import report


def expiry_report(hostvars, hosts, threshold_days, rotation_max_age_days=0):
    found = report.expiry([(host, hostvars[host]["mtls_inspected"]) for host in hosts if "mtls_inspected" in hostvars[host]],
                          int(threshold_days))
    record = next((hostvars[host]["mtls_certs_rotations"] for host in hosts if "mtls_certs_rotations" in hostvars[host]), None)
    if record is not None:
        rotated = report.rotations(hosts, record["hosts"], float(rotation_max_age_days or 0), datetime.datetime.now(datetime.timezone.utc))
        found = dict(found, rotations=rotated["rows"], rotation_table=rotated["table"], alerts=found["alerts"] + rotated["alerts"],
                     alert_lines=found["alert_lines"] + rotated["alert_lines"])
    return found


class FilterModule:
    def filters(self):
        return {"expiry_report": expiry_report}
