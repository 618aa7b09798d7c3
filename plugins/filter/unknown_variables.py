# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: unknown_variables
short_description: Find role variables that the role does not know (typos)
version_added: 0.1.0
description:
  - Given the names of the variables in scope that carry a role's prefix, returns one sentence per
    name that is neither an option of the role's C(meta/argument_specs.yml) nor one of the role's
    results, with the closest known name as the likely fix.
author: mtls.fleet developers (@mtls-fleet)
positional: role_path, results, host
options:
  _input:
    description: Variable names, for example from C(query('ansible.builtin.varnames', '^mtls_certs_')).
    type: list
    elements: str
    required: true
  role_path:
    description: The role's directory (the C(role_path) variable inside the role).
    type: path
    required: true
  results:
    description:
      - Other names with the role's prefix that are no option of the role and are not typos - the facts
        the role sets itself, and the playbooks' own variables (C(mtls_nginx_group), the nginx hosts' group).
    type: list
    elements: str
    required: true
  host:
    description: Inventory hostname, for messages.
    type: str
    required: true
"""

EXAMPLES = r"""
problems: "{{ query('ansible.builtin.varnames', '^mtls_certs_') | mtls.fleet.unknown_variables(role_path, ['mtls_certs_result'], inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One sentence per unknown variable; empty when there is none.
  type: list
  elements: str
"""

import os

import yaml

from ansible_collections.mtls.fleet.plugins.module_utils import role_variables


def unknown_variables(names, role_path, results, host):
    with open(os.path.join(role_path, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        known = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    return role_variables.unknown(names, known, results, os.path.basename(role_path), host)


class FilterModule:
    def filters(self):
        return {"unknown_variables": unknown_variables}
