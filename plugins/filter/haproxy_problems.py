# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: haproxy_problems
short_description: Check a host's mtls_haproxy settings against its services and the fleet's identities
version_added: 0.5.0
description:
  - Returns every problem in a host's C(mtls_haproxy_frontends) and C(mtls_haproxy_backends), each
    naming the host, the variable and the fix; an empty list when all is well.
  - Each frontend and backend must use one of the host's own services, and that service must ask
    for C(formats) V(haproxy) (HAProxy loads its chain and key from C(combined.pem)); backend
    names must exist; every allow-list entry must be an identity the CA issues.
  - Every value written into HAProxy's configuration must be what its keyword takes (a port,
    host:port, a host name, a time, a path, a cipher list), so that no space, C(#), quote or line
    break in the inventory can add a keyword or a section.
author: mtls.fleet developers (@mtls-fleet)
positional: backends, host_services, identities, host, settings
options:
  _input:
    description: The host's C(mtls_haproxy_frontends).
    type: list
    elements: dict
    required: true
  backends:
    description: The host's C(mtls_haproxy_backends).
    type: list
    elements: dict
    required: true
  host_services:
    description: The host's C(mtls_certs_services) (names and C(formats)).
    type: list
    elements: dict
    required: true
  identities:
    description: Every service name in the inventory.
    type: list
    elements: str
    required: true
  host:
    description: Inventory hostname, for messages (and the default C(server_name)).
    type: str
    required: true
  settings:
    description:
      - The role's other values that reach the configuration, by variable name without the C(mtls_haproxy_) prefix
        (C(timeout_connect), C(timeout_client), C(timeout_server), C(certs_dir), C(ciphers)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
problems: >-
  {{ mtls_haproxy_frontends | mtls.fleet.haproxy_problems(mtls_haproxy_backends, mtls_certs_services, ['edge', 'client', 'api'],
                                                          inventory_hostname, {'timeout_connect': '2s'}) }}
"""

RETURN = r"""
_value:
  description: The problems found, each a sentence; empty when the settings are fine.
  type: list
  elements: str
"""

import re

from ansible_collections.mtls.fleet.plugins.module_utils import nginx_values

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TIME = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?")


def _time(value):
    return None if _TIME.fullmatch(str(value)) else "write a time such as 2s, 500ms or 1m (one number and unit)"


def _name(value):
    return None if _NAME.fullmatch(str(value)) else "write letters, digits, '-' and '_' (up to 64, starting with a letter or digit)"


SETTINGS = {"timeout_connect": _time, "timeout_client": _time, "timeout_server": _time,
            "certs_dir": nginx_values.absolute_path, "ciphers": nginx_values.ciphers}


def haproxy_problems(frontends, backends, host_services, identities, host, settings=None):
    problems = []
    services = {service.get("name"): service for service in host_services}
    backend_names = {backend.get("name") for backend in backends}
    for name, value in (settings or {}).items():
        problems += _value_problems(f"host {host}: mtls_haproxy_{name}", value, SETTINGS[name])
    for index, frontend in enumerate(frontends):
        where = f"host {host}: mtls_haproxy_frontends[{index}]"
        problems += _service_problems(where, frontend.get("service"), services, "the identity HAProxy serves")
        problems += _value_problems(f"{where}.listen", frontend.get("listen"), nginx_values.port)
        if frontend.get("server_name") is not None:
            problems += _value_problems(f"{where}.server_name", frontend["server_name"], nginx_values.host_name)
        if frontend.get("backend") and frontend["backend"] not in backend_names:
            problems.append(f"{where}.backend {frontend['backend']!r} is not in mtls_haproxy_backends; add it or fix the name")
        for entry in frontend.get("allow") or []:
            if str(entry) not in identities:
                problems.append(f"{where}.allow: {entry!r} is not an identity the CA issues (known: {', '.join(sorted(identities))}); "
                                "use a service name from some host's mtls_certs_services")
    for index, backend in enumerate(backends):
        where = f"host {host}: mtls_haproxy_backends[{index}]"
        problems += _value_problems(f"{where}.name", backend.get("name"), _name)
        problems += _service_problems(where, backend.get("service"), services, "the identity HAProxy presents to the servers")
        if not backend.get("servers"):
            problems.append(f"{where} lists no servers; add host:port entries")
        for i, entry in enumerate(backend.get("servers") or []):
            problems += _value_problems(f"{where}.servers[{i}]", entry, nginx_values.upstream_server)
        problems += _value_problems(f"{where}.server_name", backend.get("server_name"), nginx_values.host_name)
    return problems


def _service_problems(where, name, services, what):
    own = ", ".join(sorted(n for n in services if n)) or "none"
    if name not in services:
        return [f"{where}.service {name!r} is not one of this host's mtls_certs_services ({own}); it is {what}: fix the name or add the service"]
    if "haproxy" not in (services[name].get("formats") or []):
        return [f"{where}.service {name!r}: HAProxy reads a certificate's chain and key from one file; "
                f"add formats: [haproxy] to service {name!r} in mtls_certs_services"]
    return []


def _value_problems(where, value, check):
    fix = check(value)
    return [f"{where}: {value!r} cannot go into HAProxy's configuration; {fix}"] if fix else []


class FilterModule:
    def filters(self):
        return {"haproxy_problems": haproxy_problems}
