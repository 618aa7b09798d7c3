#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check one role's settings and requirements on one host, in one task
version_added: 0.4.0
description:
  - Validates the role's variables against the C(main) entry point of its C(meta/argument_specs.yml),
    as Ansible's own role argument validation would, finds variables with the role's prefix that the
    role does not know (typos, each with its likely fix), adds the problems the role found on the
    controller, and checks what the host must have (Python and C(cryptography) for the modules;
    executables, users, groups, systemd units), with one connection to the host.
  - Fails with every problem found, each naming the host, the variable or file, and the fix. Nothing
    is changed.
  - The roles' C(preflight) entry points run it; the C(site) and C(rotate) playbooks run every
    preflight before any host changes, and skip Ansible's second validation of the same spec.
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - mtls.fleet.attributes
  - mtls.fleet.attributes.read_only
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  role_path:
    description: The role whose C(meta/argument_specs.yml) (entry point C(main)) the variables are checked against.
    type: path
    required: true
  own_variables:
    description:
      - Variables with the role's prefix (its name and C(_)) that are no option of the role and are not
        typos - the results and facts the role sets itself, and the playbooks' own variables.
    type: list
    elements: str
    default: []
    version_added: 0.4.0
  problems:
    description: Problems the role found on the controller (settings against the fleet).
    type: list
    elements: str
    default: []
  host_requirements:
    description: Run M(mtls.fleet.host_requirements) on the host (Python 3.7+, C(cryptography) 38+).
    type: bool
    default: false
  host_has:
    description:
      - What the host must have, each entry one kind of thing and what to say when it is missing.
        All are checked with one shell command on the host (no module).
      - A V(unit_reload) entry whose unit also has a V(unit) entry that failed is not reported; the
        V(unit) entry's message says what to do first.
    type: list
    elements: dict
    default: []
    suboptions:
      executable:
        description: An executable file's path.
        type: path
      user:
        description: A user (name or ID) the host's accounts know (C(getent passwd)).
        type: str
      group:
        description: A group (name or ID) the host's accounts know (C(getent group)).
        type: str
      unit:
        description: A systemd unit that is loaded (it exists).
        type: str
      unit_reload:
        description: A systemd unit that can reload (it has an C(ExecReload=)).
        type: str
      missing:
        description: What to say when it is missing (what it is and the fix); the host's name is put before it.
        type: str
        required: true
notes:
  - A host that cannot be reached fails the task as unreachable, unless the task sets
    C(ignore_unreachable), where it passes with RV(host_reached=false) (C(rotate) reports such a host
    in its plan and goes on).
seealso:
  - module: mtls.fleet.host_requirements
"""

EXAMPLES = r"""
- name: Check this host's nginx settings, and that nginx is installed
  mtls.fleet.preflight:
    role_path: "{{ role_path }}"
    problems: "{{ mtls_nginx_servers | mtls.fleet.nginx_problems(mtls_nginx_upstreams, [], [], 'example.org', inventory_hostname) }}"
    host_has:
      - executable: /usr/sbin/nginx
        missing: nginx is not installed (/usr/sbin/nginx is missing); install it (apt-get install nginx)
      - user: www-data
        missing: the user www-data does not exist; create it
"""

RETURN = r"""
problems:
  description: Every problem found; the task fails when there is one.
  returned: always
  type: list
  elements: str
  sample: ["host web-1: mtls_nginx_servers[0].service: 'api' is not a service of this host"]
host_reached:
  description: Whether the host's checks ran (V(false) only with C(ignore_unreachable)).
  returned: always
  type: bool
  sample: true
"""
