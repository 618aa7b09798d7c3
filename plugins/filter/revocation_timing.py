# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: revocation_timing
short_description: How long each endpoint took to refuse each revoked certificate, and who did not get the new CRLs
version_added: 0.5.0
description:
  - Joins the M(mtls.fleet.revocation_check) results of the revoked hosts (C(mtls_revoke_timing)) into one table,
    with one line per revoked host and endpoint and the seconds from the revocation's start to the
    first refusal. A last line gives the fleet's slowest refusal.
  - Lists the hosts that did not get the new CRLs (no C(mtls_revoke_published)). Each still accepts
    the revoked certificates, until its CRLs' next update (O(crl)'s C(replaced_next_update)), after
    which it refuses every client.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts, revoked_hosts, crl
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
  revoked_hosts:
    description: The hosts whose certificates were revoked.
    type: list
    elements: str
    required: true
  crl:
    description: The M(mtls.fleet.crl) result of the run.
    type: dict
    required: true
"""

EXAMPLES = r"""
timing: "{{ hostvars | mtls.fleet.revocation_timing(groups['mtls_hosts'], ['client-1'], mtls_certs_crl) }}"
"""

RETURN = r"""
_value:
  description: The table's lines.
  type: list
  elements: str
"""

import datetime

from ansible_collections.mtls.fleet.plugins.module_utils import tables


def revocation_timing(hostvars, hosts, revoked_hosts, crl):
    records = [(host, (hostvars[host].get("mtls_revoke_timing") or {}).get("endpoints")) for host in revoked_hosts]
    missed = [host for host in hosts if not hostvars[host].get("mtls_revoke_published")]
    return tables.revocation_timing(records, missed, crl.get("replaced_next_update"), datetime.datetime.now(datetime.timezone.utc))


class FilterModule:
    def filters(self):
        return {"revocation_timing": revocation_timing}
