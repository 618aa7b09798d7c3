# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: certificate_requests
short_description: Turn a host's service list into validated certificate requests
version_added: 0.1.0
description:
  - Builds the M(mtls.fleet.certificates) requests for one host from its C(mtls_certs_services),
    and checks every name with the same rules the CA applies, so bad input fails on the
    controller, naming the host, the variable and the fix, before any host changes.
  - Each service becomes the certificate C(<host>-<service>) with common name C(<service>) and
    SANs made of its DNS names (default the inventory hostname), its IP addresses, its extra SANs,
    and the identity URI C(spiffe://<trust_domain>/<service>).
  - Each request names its host, so that the CA refuses a name another host already has (host
    C(a-b) with service C(c) and host C(a) with service C(b-c) are both C(a-b-c)).
author: mtls.fleet developers (@mtls-fleet)
positional: host, trust_domain
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
"""

EXAMPLES = r"""
requests: "{{ mtls_certs_services | mtls.fleet.certificate_requests(inventory_hostname, 'example.org') }}"
"""

RETURN = r"""
_value:
  description: One request per service, for the certificates option of M(mtls.fleet.certificates).
  type: list
  elements: dict
"""

import re

from ansible.errors import AnsibleFilterError


SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def certificate_requests(services, host, trust_domain):
    # Here, not at the top: Ansible loads every filter file of the collection in each worker that
    # uses any of them, and cryptography would then be imported for every such task.
    from ansible_collections.mtls.fleet.plugins.module_utils import pki

    if not isinstance(services, list) or not services:
        raise AnsibleFilterError(
            f"host {host}: mtls_certs_services is empty; list the services this host runs, e.g. mtls_certs_services: [{{name: web}}]"
        )
    requests, errors = [], []
    for index, service in enumerate(services):
        where = f"host {host}: mtls_certs_services[{index}]"
        if not isinstance(service, dict) or not service.get("name"):
            errors.append(f"{where} has no name; give each service a name, e.g. {{name: web}}")
            continue
        name = str(service["name"])
        where = f"{where} ({name})"
        if not SERVICE_NAME.fullmatch(name):
            errors.append(f"{where}: name must be lower-case letters, digits and '-' (it is the service identity)")
            continue
        sans = [f"DNS:{d}" for d in service.get("dns_names") or [host]]
        sans += [f"IP:{a}" for a in service.get("ip_addresses") or []]
        sans += list(service.get("extra_sans") or [])
        sans.append(f"URI:spiffe://{trust_domain}/{name}")
        try:
            for san in sans:
                pki.parse_san(san, _field(san, service))
            pki.Profile.parse(service.get("profile") or "service", "profile")
        except pki.PKIError as exc:
            errors.append(f"{where}: {exc}")
            continue
        certificate_name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{host}-{name}")
        if not pki.SAFE_NAME.fullmatch(certificate_name):
            errors.append(f"{where}: the certificate name {certificate_name!r} made of the inventory hostname and the service name "
                          "must start with a letter or digit and have at most 128 characters; shorten or rename the host or the service")
            continue
        requests.append({
            "name": certificate_name,
            "common_name": name,
            "subject_alt_name": sans,
            "profile": service.get("profile") or "service",
            "host": host,
        })
    if errors:
        raise AnsibleFilterError("; ".join(errors))
    return requests


def _field(san, service):
    """Which of the service's variables a SAN came from, for the error message."""
    value = san.split(":", 1)[1]
    if san.startswith("DNS:") and value in (service.get("dns_names") or []):
        return "dns_names"
    if san.startswith("IP:") and value in (service.get("ip_addresses") or []):
        return "ip_addresses"
    if san.startswith("URI:spiffe://"):
        return "mtls_certs_trust_domain"
    return "extra_sans" if san in (service.get("extra_sans") or []) else "dns_names (default: the inventory hostname)"


class FilterModule:
    def filters(self):
        return {"certificate_requests": certificate_requests}
