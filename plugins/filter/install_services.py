# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: install_services
short_description: A host's services as M(mtls.fleet.certificate_files) installs them, from the issuance's record
version_added: 0.4.0
description:
  - Joins a host's C(mtls_certs_services), its requests and the issuance's result of
    M(mtls.fleet.certificates) (run with C(return_content=true)) into the
    O(mtls.fleet.certificate_files#module:services) entries of M(mtls.fleet.certificate_files)
    - each service's directory C(<certs_dir>/<service>), its certificate, its key, the group that
    may read the key, the key's mode (0600, or 0640 for a group other than root) and the other
    formats it asks for (C(formats)).
  - Keys made on the CA host come from O(private_keys), by their path on the CA host. Keys kept on
    the host have none; their next key's path comes from O(next_keys).
author: mtls.fleet developers (@mtls-fleet)
positional: requests, issued, certs_dir, private_keys, next_keys
options:
  _input:
    description: The host's C(mtls_certs_services).
    type: list
    elements: dict
    required: true
  requests:
    description: The host's requests (C(mtls_certs_requests)), in the order of its services.
    type: list
    elements: dict
    required: true
  issued:
    description: The result of M(mtls.fleet.certificates) (C(mtls_certs_issued)).
    type: dict
    required: true
  certs_dir:
    description: The host's certificate directory (C(mtls_certs_dir)).
    type: str
    required: true
  private_keys:
    description: The PEM of each key made on the CA host, by its path there (RV(mtls.fleet.certificates#module:certificates[].key_path)).
    type: dict
    default: {}
  next_keys:
    description: The results of M(mtls.fleet.csr) for the host's services, in their order, when keys are kept on the host.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
services: "{{ mtls_certs_services | mtls.fleet.install_services(mtls_certs_requests, mtls_certs_issued, '/etc/mtls', keys) }}"
"""

RETURN = r"""
_value:
  description: One entry per service, for the services option of M(mtls.fleet.certificate_files).
  type: list
  elements: dict
"""

import posixpath

from ansible.errors import AnsibleFilterError


def install_services(services, requests, issued, certs_dir, private_keys=None, next_keys=None):
    certificates = {certificate["name"]: certificate for certificate in issued["certificates"]}
    entries = []
    for index, (service, request) in enumerate(zip(services, requests)):
        certificate = certificates.get(request["name"])
        if certificate is None or not certificate.get("certificate"):
            raise AnsibleFilterError(f"service {service['name']}: the issuance returned no certificate {request['name']!r} "
                                     "(run mtls.fleet.certificates for this host's requests, with return_content: true)")
        key_path = certificate["key_path"]
        if key_path and key_path not in (private_keys or {}):
            raise AnsibleFilterError(f"service {service['name']}: no key was read from {key_path} on the CA host")
        group = service.get("group") or "root"
        entries.append({
            "name": service["name"],
            "path": posixpath.join(certs_dir, service["name"]),
            "certificate": certificate["certificate"],
            "private_key": private_keys[key_path] if key_path else None,
            "next_key_path": next_keys[index]["next_path"] if next_keys else None,
            "group": group,
            "key_mode": "0600" if group == "root" else "0640",
            "formats": list(service.get("formats") or []),
        })
    return entries


class FilterModule:
    def filters(self):
        return {"install_services": install_services}
