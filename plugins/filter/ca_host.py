# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ca_host
short_description: Which host keeps the CA, as the fleet's inventory says
version_added: 0.4.0
description:
  - A play's host pattern is resolved before inventory variables, so a CA play cannot target
    C(mtls_ca_host) set in the inventory. The playbooks' first play therefore asks this filter
    which host the fleet's hosts name in C(mtls_ca_host) (from C(-e), or anywhere in the
    inventory) and puts it in the group C(__mtls_ca), which the CA plays target.
  - The controller (C(localhost)) when no host sets it. Hosts that name different CA hosts are an
    error naming them and the fix, and so is a CA host that is not in the inventory, unless
    O(outside_inventory) allows it.
author: mtls.fleet developers (@mtls-fleet)
positional: hostvars, outside_inventory
options:
  _input:
    description: The fleet's hosts, and C(localhost) (whose view covers C(-e) and C(group_vars/all)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) variable.
    type: raw
    required: true
  outside_inventory:
    description:
      - Whether a CA host that is not in this run's inventory is reached by its name (a DNS name or
        an address) with the inventory's C(all) variables, as the C(site) playbook does for a sliced
        job (AWX job slicing gives each slice only its own hosts).
      - When V(false), such a CA host is an error that says to add it or to run unsliced (C(rotate)
        and C(revoke) work across the whole fleet).
    type: bool
    default: false
    version_added: 0.4.0
"""

EXAMPLES = r"""
ca: "{{ (groups['mtls_hosts'] + ['localhost']) | mtls.fleet.ca_host(hostvars) }}"   # {'name': 'ca-1', 'local': false, 'outside': false}
sliced: "{{ (groups['mtls_hosts'] + ['localhost']) | mtls.fleet.ca_host(hostvars, true) }}"   # a CA host outside the slice too
"""

RETURN = r"""
_value:
  description:
    - C(name), the CA host's inventory name (or the name it is reached by), C(local), whether it is
      the controller, and C(outside), whether it is missing from this run's inventory (allowed by
      O(outside_inventory)).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.module_utils.controller import is_controller


def ca_host(hosts, hostvars, outside_inventory=False):
    named = {}
    for host in hosts:
        value = hostvars[host].get("mtls_ca_host")
        if value:
            named.setdefault(str(value), []).append(host)
    if len(named) > 1:
        said = "; ".join(f"{', '.join(sorted(by))} name {name}" for name, by in sorted(named.items()))
        raise AnsibleFilterError(f"mtls_ca_host differs between the fleet's hosts ({said}); the fleet has one CA: set "
                                 "mtls_ca_host once, in group_vars/all or with -e")
    name = next(iter(named), "localhost")
    local = is_controller(name)
    outside = not local and name not in hostvars
    if outside and not outside_inventory:
        raise AnsibleFilterError(f"mtls_ca_host is {name!r}, which is not in this run's inventory; add the CA host to "
                                 "the inventory or fix the name. A sliced job (AWX job slicing) gives each slice only its "
                                 "own hosts: rotate and revoke work across the fleet, so run them unsliced")
    return {"name": name, "local": local, "outside": outside}


class FilterModule:
    def filters(self):
        return {"ca_host": ca_host}
