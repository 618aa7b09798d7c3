# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: installed_certificates
short_description: Where a host's certificates are installed, and what each must say
version_added: 0.4.0
description:
  - Builds the O(mtls.fleet.certificate_info#module:certificates) entries of M(mtls.fleet.certificate_info)
    for one host from its C(mtls_certs_services) - each service's installed certificate and key
    (C(<certs_dir>/<service>/cert.pem) and C(key.pem), as M(mtls.fleet.certificate_files) installs
    them) and the names, SANs and profile its request gives the CA - so the verdict on the host
    judges the same things the CA does.
  - Bad services fail as in P(mtls.fleet.certificate_requests#filter), naming the host, the variable and the fix.
author: mtls.fleet developers (@mtls-fleet)
positional: host, trust_domain, certs_dir
options:
  _input:
    description: The host's services, as in the mtls_certs role's C(mtls_certs_services).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory hostname of the host.
    type: str
    required: true
  trust_domain:
    description: SPIFFE trust domain of the identity URIs.
    type: str
    required: true
  certs_dir:
    description: The host's certificate directory (C(mtls_certs_dir)).
    type: str
    required: true
"""

EXAMPLES = r"""
certificates: "{{ mtls_certs_services | mtls.fleet.installed_certificates(inventory_hostname, 'example.org', '/etc/mtls') }}"
"""

RETURN = r"""
_value:
  description: One entry per service, in the host's order.
  type: list
  elements: dict
"""

import posixpath

from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests


def installed_certificates(services, host, trust_domain, certs_dir):
    entries = []
    for service, request in zip(services, certificate_requests(services, host, trust_domain)):
        directory = posixpath.join(certs_dir, service["name"])
        entries.append({
            "name": service["name"],
            "path": posixpath.join(directory, "cert.pem"),
            "privatekey_path": posixpath.join(directory, "key.pem"),
            "subject_alt_name": request["subject_alt_name"],
            "common_name": request["common_name"],
            "profile": request["profile"],
        })
    return entries


class FilterModule:
    def filters(self):
        return {"installed_certificates": installed_certificates}
