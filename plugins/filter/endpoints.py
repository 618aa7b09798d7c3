# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: endpoints
short_description: Every mTLS endpoint of some hosts, nginx servers, apps, HAProxy and PostgreSQL alike
version_added: 0.3.0
description:
  - Returns one record per mTLS endpoint the given hosts serve, in one shape, so the smoke check,
    the rotation health gate, revocation and rollover checks treat an nginx server and an app
    that terminates mTLS itself the same way.
  - A host contributes its C(mtls_nginx_servers) when it is in the nginx group, its
    C(mtls_app_endpoints) when it is in the apps group, its C(mtls_haproxy_frontends) when it is in
    the HAProxy group and its PostgreSQL server (C(mtls_postgresql_service), C(mtls_postgresql_port))
    when it is in the PostgreSQL group.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts, nginx_hosts, app_hosts, haproxy_hosts, postgresql_hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts whose endpoints to list.
    type: list
    elements: str
    required: true
  nginx_hosts:
    description: The hosts of the nginx group.
    type: list
    elements: str
    required: true
  app_hosts:
    description: The hosts of the apps group.
    type: list
    elements: str
    required: true
  haproxy_hosts:
    description: The hosts of the HAProxy group.
    type: list
    elements: str
    default: []
    version_added: 0.5.0
  postgresql_hosts:
    description: The hosts of the PostgreSQL group.
    type: list
    elements: str
    default: []
    version_added: 0.5.0
"""

EXAMPLES = r"""
endpoints: "{{ hostvars | mtls.fleet.endpoints([inventory_hostname], groups['mtls_nginx'], groups['mtls_apps']) }}"
"""

RETURN = r"""
_value:
  description:
    - One record per endpoint, nginx servers first, with C(host), C(kind) (V(nginx), V(app), V(haproxy) or V(postgresql)),
      C(service) (the identity it serves), C(port), C(server_name) (the name clients dial), C(path),
      C(status) (the HTTP status to expect, or V(null) for any answer that accepted the client),
      C(identity) (which of the host's own identities probes it), C(label) and C(address) (where other hosts
      reach it, the host's C(ansible_host) or else its name); PostgreSQL's also C(user) and C(database) (the role
      and database the host's own identity logs in to, to prove it).
  type: list
  elements: dict
"""


# The role and database a PostgreSQL host's own identity logs in to, to prove its server; the
# mtls_postgresql role's pg_ident.conf maps that identity to this role and creates it.
POSTGRESQL_PROBE_ROLE = "mtls_fleet_probe"
POSTGRESQL_PORT = 5432


def endpoints(hostvars, hosts, nginx_hosts, app_hosts, haproxy_hosts=(), postgresql_hosts=()):
    found = []
    for host in hosts:
        facts = hostvars[host]
        if host in nginx_hosts:
            for server in facts.get("mtls_nginx_servers") or []:
                found.append(_record(facts, host, "nginx", server["service"], server["listen"], server.get("server_name"), "/", None, None))
        if host in app_hosts:
            service = facts.get("mtls_app_service")
            for endpoint in facts.get("mtls_app_endpoints") or []:
                found.append(_record(facts, host, "app", service, endpoint["port"], endpoint.get("server_name"), endpoint.get("path") or "/",
                                     endpoint.get("status"), endpoint.get("identity")))
        if host in haproxy_hosts:
            for frontend in facts.get("mtls_haproxy_frontends") or []:
                found.append(_record(facts, host, "haproxy", frontend["service"], frontend["listen"], frontend.get("server_name"), "/", None, None))
        if host in postgresql_hosts and facts.get("mtls_postgresql_service"):
            record = _record(facts, host, "postgresql", facts["mtls_postgresql_service"], facts.get("mtls_postgresql_port") or POSTGRESQL_PORT,
                             facts.get("mtls_postgresql_server_name"), "/", None, None)
            found.append(dict(record, user=POSTGRESQL_PROBE_ROLE, database="postgres"))
    return found


def _record(facts, host, kind, service, port, server_name, path, status, identity):
    return {"host": host, "kind": kind, "service": service, "port": int(port), "server_name": server_name or host, "path": path,
            "status": int(status) if status is not None else None, "identity": identity or service,
            "label": f"{kind} {service}:{port}", "address": str(facts.get("ansible_host") or host)}


class FilterModule:
    def filters(self):
        return {"endpoints": endpoints}
