# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: postgresql_problems
short_description: Check a host's mtls_postgresql settings against its services and the fleet's identities
version_added: 0.5.0
description:
  - Returns every problem in a host's C(mtls_postgresql_*) settings, each naming the host, the variable and the fix;
    an empty list when all is well.
  - The service must be one of the host's own, with a group other than root (PostgreSQL reads its key as user
    postgres); each client's identity must be one the CA issues; roles, databases and addresses must be what
    pg_hba.conf and pg_ident.conf take, so that no space, quote or line break in the inventory can add a line or a setting.
author: mtls.fleet developers (@mtls-fleet)
positional: service, host_services, identities, host, settings
options:
  _input:
    description: The host's C(mtls_postgresql_clients).
    type: list
    elements: dict
    required: true
  service:
    description: The host's C(mtls_postgresql_service).
    type: str
    required: true
  host_services:
    description: The host's C(mtls_certs_services) (names and C(group)).
    type: list
    elements: dict
    required: true
  identities:
    description: Every service name in the inventory.
    type: list
    elements: str
    required: true
  host:
    description: Inventory hostname, for messages.
    type: str
    required: true
  settings:
    description:
      - The role's other values, by variable name without the C(mtls_postgresql_) prefix (C(hba_lines),
        C(listen_addresses), C(port), C(version), C(cluster), C(certs_dir)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
problems: >-
  {{ mtls_postgresql_clients | mtls.fleet.postgresql_problems(mtls_postgresql_service, mtls_certs_services, ['db', 'api'],
                                                              inventory_hostname, {'port': 5432}) }}
"""

RETURN = r"""
_value:
  description: The problems found, each a sentence; empty when the settings are fine.
  type: list
  elements: str
"""

import ipaddress
import re

from ansible_collections.mtls.fleet.plugins.module_utils import nginx_values

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
_LISTEN = re.compile(r"\*|[A-Za-z0-9.:_-]+(?:,[A-Za-z0-9.:_-]+)*")


def _identifier(value):
    return None if _IDENTIFIER.fullmatch(str(value)) else "write a lower-case PostgreSQL name (letters, digits, '_' and '$', up to 63)"


def _database(value):
    return None if str(value) == "all" else _identifier(value)


def _address(value):
    if str(value) == "all":
        return None
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return "write all or a CIDR range (10.0.0.0/8, 192.0.2.7/32, 2001:db8::/32)"
    return None if "/" in str(value) else "write the range with its prefix length (192.0.2.7/32)"


def _hba_lines(value):
    if not isinstance(value, list) or any(not isinstance(line, str) or "\n" in line or "\r" in line for line in value):
        return "list pg_hba.conf lines, each one line of text"
    return None


SETTINGS = {
    "hba_lines": _hba_lines,
    "listen_addresses": lambda value: None if _LISTEN.fullmatch(str(value)) else "write * or host names and addresses separated by commas",
    "port": nginx_values.port,
    "version": lambda value: None if re.fullmatch(r"[0-9]{1,3}", str(value)) else "write the major version, such as 15",
    "cluster": lambda value: None if re.fullmatch(r"[A-Za-z0-9_-]{1,63}", str(value)) else "write the cluster's name, such as main",
    "certs_dir": nginx_values.absolute_path,
}
CLIENT_FIELDS = {"role": _identifier, "database": _database, "address": _address}


def postgresql_problems(clients, service, host_services, identities, host, settings=None):
    problems = []
    services = {entry.get("name"): entry for entry in host_services}
    own = ", ".join(sorted(name for name in services if name)) or "none"
    for name, value in (settings or {}).items():
        problems += _value_problems(f"host {host}: mtls_postgresql_{name}", value, SETTINGS[name])
    if service not in services:
        problems.append(f"host {host}: mtls_postgresql_service {service!r} is not one of this host's mtls_certs_services ({own}); "
                        "name the identity PostgreSQL serves as")
    elif (services[service].get("group") or "root") == "root":
        problems.append(f"host {host}: mtls_postgresql_service {service!r}: PostgreSQL reads its key as user postgres, and the key would be "
                        f"root's alone (0600); set group: postgres on service {service!r} in mtls_certs_services")
    for index, client in enumerate(clients):
        where = f"host {host}: mtls_postgresql_clients[{index}]"
        if str(client.get("identity")) not in identities:
            problems.append(f"{where}.identity {client.get('identity')!r} is not an identity the CA issues (known: {', '.join(sorted(identities))}); "
                            "use a service name from some host's mtls_certs_services")
        for field, check in CLIENT_FIELDS.items():
            if client.get(field) is not None:
                problems += _value_problems(f"{where}.{field}", client[field], check)
    return problems


def _value_problems(where, value, check):
    fix = check(value)
    return [f"{where}: {value!r} cannot go into PostgreSQL's settings; {fix}"] if fix else []


class FilterModule:
    def filters(self):
        return {"postgresql_problems": postgresql_problems}
