# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: revocation_requests
short_description: What the revoke playbook revokes, from the hosts, services, names and serials given
version_added: 0.4.0
description:
  - Every certificate of O(fleet_hosts) (and of O(hosts) outside it) whose host is in O(hosts) or
    whose service is in O(services), by the name the CA issued it under (C(<host>-<service>), the
    same name P(mtls.fleet.certificate_requests#filter) gives it), then O(certificates) by name
    and O(serials) as given, each with O(reason).
  - Lists may be given as lists or as comma-separated strings (C(-e revoke_services=web,api)).
author: mtls.fleet developers (@mtls-fleet)
positional: fleet_hosts, hosts, services, certificates, serials, reason
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  fleet_hosts:
    description: The fleet's hosts.
    type: list
    elements: str
    required: true
  hosts:
    description: Hosts all of whose certificates are revoked (inventory names).
    type: list
    elements: str
    required: true
  services:
    description: Services whose certificate is revoked on every host that runs them.
    type: raw
    required: true
  certificates:
    description: Certificate names to revoke.
    type: raw
    required: true
  serials:
    description: Serials to revoke (hex, as nginx logs them).
    type: raw
    required: true
  reason:
    description: The revocation reason for all of them.
    type: str
    required: true
"""

EXAMPLES = r"""
revocation: >-
  {{ hostvars | mtls.fleet.revocation_requests(groups['mtls_hosts'], ['web-1'], 'api', '', '', 'key_compromise') }}
"""

RETURN = r"""
_value:
  description: What to revoke.
  type: dict
  contains:
    requests:
      description:
        - The C(revoke) list for M(mtls.fleet.crl) - C(name) or C(serial), and C(reason); a certificate chosen by
          host or service also names its C(host), which the CA checks against its store.
      type: list
      elements: dict
    hosts:
      description: The hosts whose certificates are revoked (by host or service), for the proof that they are refused.
      type: list
      elements: str
"""

from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests


def revocation_requests(hostvars, fleet_hosts, hosts, services, certificates, serials, reason):
    services = _items(services)
    selected = []
    for host in _unique(list(fleet_hosts) + list(hosts)):
        own = hostvars[host].get("mtls_certs_services") or []
        trust_domain = hostvars[host].get("mtls_certs_trust_domain") or "example.org"
        for request in certificate_requests(own, host, trust_domain) if own else []:
            if host in hosts or request["common_name"] in services:
                selected.append((host, request["name"]))
    selected = _unique(selected)
    owners = {name: host for host, name in selected}
    requests = [dict({"name": name, "reason": reason}, **({"host": owners[name]} if name in owners else {}))
                for name in _unique([pair[1] for pair in selected] + _items(certificates))]
    requests += [{"serial": serial, "reason": reason} for serial in _items(serials)]
    return {"requests": requests, "hosts": _unique([pair[0] for pair in selected])}


def _items(value):
    if isinstance(value, str):
        value = value.split(",")
    return [str(item).strip() for item in value or [] if str(item).strip()]


def _unique(items):
    return list(dict.fromkeys(items))


class FilterModule:
    def filters(self):
        return {"revocation_requests": revocation_requests}
