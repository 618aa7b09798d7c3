# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: app_host_needs
short_description: What an app host must have before mtls_app changes anything
version_added: 0.4.0
description:
  - Returns the entries of M(mtls.fleet.preflight)'s O(mtls.fleet.preflight#module:host_has) for a host's
    C(mtls_app_*) settings, each with the message that names the variable and the fix.
  - The app's user and group must exist (they own its certificate directory and environment file);
    its unit, when one is named, must be loaded by systemd and, for V(reload), have an C(ExecReload=).
author: mtls.fleet developers (@mtls-fleet)
positional: unit, unit_action, user, group
options:
  _input:
    description: The host's C(mtls_app_name) (for messages).
    type: str
    required: true
  unit:
    description: C(mtls_app_unit); empty for none.
    type: str
    required: true
  unit_action:
    description: C(mtls_app_unit_action).
    type: str
    required: true
  user:
    description: C(mtls_app_user).
    type: str
    required: true
  group:
    description: C(mtls_app_group).
    type: str
    required: true
"""

EXAMPLES = r"""
host_has: "{{ mtls_app_name | mtls.fleet.app_host_needs(mtls_app_unit, mtls_app_unit_action, mtls_app_user, mtls_app_group) }}"
"""

RETURN = r"""
_value:
  description: The checks, each a mapping of one kind (V(user), V(group), V(unit), V(unit_reload)) to its name, and missing.
  type: list
  elements: dict
"""

from ansible_collections.mtls.fleet.plugins.filter.app_problems import unit_cannot_reload, unit_missing


def app_host_needs(app, unit, unit_action, user, group):
    needs = [
        {"user": user, "missing": f"mtls_app_user {user!r} does not exist on the host; create it (the app {app} runs as it) before mtls_app "
                                  "runs, or name another"},
        {"group": group, "missing": f"mtls_app_group {group!r} does not exist on the host; create it before mtls_app runs, or name another"},
    ]
    if unit:
        needs.append({"unit": unit, "missing": unit_missing(unit)})
        if unit_action == "reload":
            needs.append({"unit_reload": unit, "missing": unit_cannot_reload(unit)})
    return needs


class FilterModule:
    def filters(self):
        return {"app_host_needs": app_host_needs}
