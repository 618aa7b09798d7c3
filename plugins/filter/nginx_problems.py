# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nginx_problems
short_description: Check a host's mtls_nginx settings against the fleet's identities
version_added: 0.1.0
description:
  - Returns every problem in a host's C(mtls_nginx_servers) and C(mtls_nginx_upstreams), each
    naming the host, the variable and the fix; an empty list when all is well.
  - Checks that each server and upstream uses one of the host's own services, that upstream names
    exist, and that every allow-list entry is an identity the CA could issue (a service name, or
    its URI C(spiffe://<trust_domain>/<service>), of some host in the inventory).
  - Checks that every value written into the nginx configuration is what its directive takes
    (a port or address:port, host names, a URL, a URI prefix, host:port, a time, a path, a cipher
    list), so that no C(;), C({), C(}), quote, C($) or line break in the inventory can add a
    directive.
author: mtls.fleet developers (@mtls-fleet)
positional: upstreams, host_services, identities, trust_domain, host, settings
options:
  _input:
    description: The host's C(mtls_nginx_servers).
    type: list
    elements: dict
    required: true
  upstreams:
    description: The host's C(mtls_nginx_upstreams).
    type: list
    elements: dict
    required: true
  host_services:
    description: Names of the host's own services (C(mtls_certs_services)).
    type: list
    elements: str
    required: true
  identities:
    description: Every service name in the inventory.
    type: list
    elements: str
    required: true
  trust_domain:
    description: SPIFFE trust domain.
    type: str
    required: true
  host:
    description: Inventory hostname, for messages (and the default C(server_name)).
    type: str
    required: true
  settings:
    description:
      - The role's other values that reach the configuration, by variable name without the
        C(mtls_nginx_) prefix (C(upstream_connect_timeout), C(upstream_read_timeout), C(certs_dir),
        C(protocols), C(ciphers), C(verify_depth), C(access_log)). Those left out are not checked.
    type: dict
    default: {}
    version_added: 0.4.0
"""

EXAMPLES = r"""
problems: "{{ mtls_nginx_servers | mtls.fleet.nginx_problems(mtls_nginx_upstreams, ['web'], ['web', 'api'], 'example.org', inventory_hostname) }}"
problems_with_settings: >-
  {{ mtls_nginx_servers | mtls.fleet.nginx_problems(mtls_nginx_upstreams, ['web'], ['web', 'api'], 'example.org', inventory_hostname,
     {'ciphers': mtls_nginx_ciphers, 'upstream_read_timeout': mtls_nginx_upstream_read_timeout}) }}
"""

RETURN = r"""
_value:
  description: The problems found, each a sentence; empty when the settings are fine.
  type: list
  elements: str
"""


from ansible_collections.mtls.fleet.plugins.module_utils import nginx_values

# The role's variables that reach the configuration, each with the check of its directive.
SETTINGS = {
    "upstream_connect_timeout": nginx_values.duration,
    "upstream_read_timeout": nginx_values.duration,
    "certs_dir": nginx_values.absolute_path,
    "protocols": nginx_values.protocols,
    "ciphers": nginx_values.ciphers,
    "verify_depth": nginx_values.verify_depth,
    "access_log": nginx_values.access_log,
}
SERVER_FIELDS = {"listen": nginx_values.listen, "server_name": nginx_values.server_names, "proxy_pass": nginx_values.url}
UPSTREAM_FIELDS = {
    "listen": nginx_values.listen, "server_name": nginx_values.host_name,
    "connect_timeout": nginx_values.duration, "read_timeout": nginx_values.duration,
}


def nginx_problems(servers, upstreams, host_services, identities, trust_domain, host, settings=None):
    problems = []
    upstream_names = {u.get("name") for u in upstreams}
    own = ", ".join(host_services) or "none"
    for name, value in (settings or {}).items():
        problems += _value_problems(f"host {host}: mtls_nginx_{name}", value, SETTINGS[name])
    for index, server in enumerate(servers):
        where = f"host {host}: mtls_nginx_servers[{index}]"
        if server.get("service") not in host_services:
            problems.append(
                f"{where}.service {server.get('service')!r} is not one of this host's mtls_certs_services ({own}); "
                "fix the name or add the service"
            )
        if not server.get("proxy_pass") and not server.get("upstream"):
            problems.append(f"{where} has neither proxy_pass nor upstream; say where verified requests go")
        if server.get("upstream") and server["upstream"] not in upstream_names:
            problems.append(f"{where}.upstream {server['upstream']!r} is not in mtls_nginx_upstreams; add it or fix the name")
        problems += _fields_problems(where, server, SERVER_FIELDS)
        if server.get("server_name") is None and (" " in host or nginx_values.server_names(host)):
            problems.append(f"{where}.server_name: the default, the inventory hostname {host!r}, is not a host name; set server_name")
        for i, location in enumerate(server.get("locations") or []):
            problems += _value_problems(f"{where}.locations[{i}].path", location.get("path"), nginx_values.location_path)
        lists = [("allow", server.get("allow") or [])]
        lists += [(f"locations[{i}].allow", loc.get("allow") or []) for i, loc in enumerate(server.get("locations") or [])]
        for field, entries in lists:
            for entry in entries:
                if identity(entry, trust_domain) not in identities:
                    problems.append(
                        f"{where}.{field}: {entry!r} is not an identity the CA issues (known: {', '.join(sorted(identities))}); "
                        "use a service name from some host's mtls_certs_services"
                    )
    for index, upstream in enumerate(upstreams):
        where = f"host {host}: mtls_nginx_upstreams[{index}]"
        if upstream.get("service") not in host_services:
            problems.append(
                f"{where}.service {upstream.get('service')!r} is not one of this host's mtls_certs_services ({own}); "
                "it is the identity this host presents upstream"
            )
        if not upstream.get("servers"):
            problems.append(f"{where} lists no servers; add host:port entries")
        for i, entry in enumerate(upstream.get("servers") or []):
            problems += _value_problems(f"{where}.servers[{i}]", entry, nginx_values.upstream_server)
        problems += _fields_problems(where, upstream, UPSTREAM_FIELDS)
    return problems


def _fields_problems(where, entry, checks):
    return [p for field, check in checks.items() if entry.get(field) is not None for p in _value_problems(f"{where}.{field}", entry[field], check)]


def _value_problems(where, value, check):
    fix = check(value)
    return [f"{where}: {value!r} cannot go into nginx's configuration; {fix}"] if fix else []


def identity(entry, trust_domain):
    """'frontend' or 'spiffe://<trust_domain>/frontend' -> 'frontend' (what nginx sees as the CN)."""
    prefix = f"spiffe://{trust_domain}/"
    return entry[len(prefix):] if str(entry).startswith(prefix) else str(entry)


class FilterModule:
    def filters(self):
        return {"nginx_problems": nginx_problems}
