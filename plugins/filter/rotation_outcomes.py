# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rotation_outcomes
short_description: Each host's outcome of a rotation run, for the rotation record
version_added: 0.4.0
description:
  - The outcome the rotation summary shows for each host (V(rotated), V(kept), V(rolled back),
    V(not started ...), V(lost during its rollout), V(not reached), ...), for
    M(mtls.fleet.rotation_record).
author: mtls.fleet developers (@mtls-fleet)
positional: hosts
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts of the run.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
outcomes: "{{ hostvars | mtls.fleet.rotation_outcomes(ansible_play_hosts_all) }}"
"""

RETURN = r"""
_value:
  description: "{host: outcome}"
  type: dict
"""

from ansible_collections.mtls.fleet.plugins.module_utils.rotation_record import outcome_of


def rotation_outcomes(hostvars, hosts):
    return {host: outcome_of(hostvars[host]) for host in hosts}


class FilterModule:
    def filters(self):
        return {"rotation_outcomes": rotation_outcomes}
