# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_drift
short_description: One host's drift between what it serves, the files installed for it and what the CA issued
version_added: 0.5.0
description:
  - Compares, for each endpoint of the host, the serial it serves with the serial of its certificate
    file, with the serials the CA's ledger says were issued and with the revoked serials; and each
    certificate file with the certificate the CA issued last for it.
  - "Kinds: V(revoked_served), V(unknown_served) (not in the ledger), V(file_not_served) (the service
    did not reload), V(behind_store) (a rotation did not finish), V(not_answering)."
author: mtls.fleet developers (@mtls-fleet)
positional: record, host, services, trust_domain
options:
  _input:
    description: The host's M(mtls.fleet.certificate_info) result, read with O(mtls.fleet.certificate_info#module:endpoints).
    type: dict
    required: true
  record:
    description: The M(mtls.fleet.ledger_info) result of the CA host.
    type: dict
    required: true
  host:
    description: The inventory hostname.
    type: str
    required: true
  services:
    description: The host's C(mtls_certs_services), to find each certificate's name in the CA store.
    type: list
    elements: dict
    required: true
  trust_domain:
    description: C(mtls_certs_trust_domain).
    type: str
    required: true
"""

EXAMPLES = r"""
drift: "{{ mtls_inspected | mtls.fleet.host_drift(mtls_certs_ledger, inventory_hostname, mtls_certs_services, 'example.org') }}"
"""

RETURN = r"""
_value:
  description: C(findings) (each with C(host), C(endpoint), C(service), C(served), C(kind), C(detail), C(fix)) and C(counts) (every kind, with 0s).
  type: dict
"""

from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests
from ansible_collections.mtls.fleet.plugins.module_utils import drift


def host_drift(inspected, record, host, services, trust_domain):
    names = {request["common_name"]: request["name"] for request in certificate_requests(services, host, trust_domain)}
    findings = drift.host_findings(host, inspected, names, record)
    return {"findings": findings, "counts": drift.counts(findings)}


class FilterModule:
    def filters(self):
        return {"host_drift": host_drift}
