# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: schedule_problems
short_description: Check the mtls_schedule settings written into the rotation's systemd units
version_added: 0.4.0
description:
  - Every C(mtls_schedule_*) value is written into the service or timer unit. A line break, quote,
    backslash, C(%) or C($) in one would add directives or be expanded by systemd; each value must
    be what its setting takes. Returns one problem per bad value, naming the host, the variable
    and the fix; an empty list when all is well.
author: mtls.fleet developers (@mtls-fleet)
positional: host
options:
  _input:
    description:
      - The role's values by variable name without the C(mtls_schedule_) prefix (C(ansible_playbook),
        C(inventory), C(extra_args), C(playbook), C(on_calendar), C(randomized_delay), C(user),
        C(working_directory), C(environment), C(unit), C(on_failure)).
    type: dict
    required: true
  host:
    description: Inventory hostname, for messages.
    type: str
    required: true
"""

EXAMPLES = r"""
problems: "{{ {'unit': mtls_schedule_unit, 'user': mtls_schedule_user} | mtls.fleet.schedule_problems(inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The problems found, each a sentence.
  type: list
  elements: str
"""

from ansible_collections.mtls.fleet.plugins.module_utils import unit_values

CHECKS = {
    "ansible_playbook": unit_values.absolute_path,
    "inventory": unit_values.inventory,
    "extra_args": unit_values.arguments,
    "playbook": unit_values.playbook,
    "on_calendar": unit_values.calendar,
    "randomized_delay": unit_values.timespan,
    "user": unit_values.user_name,
    "working_directory": unit_values.absolute_path,
    "environment": unit_values.environment,
    "unit": unit_values.unit_name,
    "on_failure": unit_values.units_on_failure,
}


def schedule_problems(settings, host):
    problems = []
    for name, value in settings.items():
        fix = CHECKS[name](value)
        if fix:
            problems.append(f"host {host}: mtls_schedule_{name} {value!r} cannot go into the rotation's systemd unit; {fix}")
    return problems


class FilterModule:
    def filters(self):
        return {"schedule_problems": schedule_problems}
