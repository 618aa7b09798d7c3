# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_blockers
short_description: The rolled-back hosts that keep each host of a batch from starting
version_added: 0.4.0
description:
  - A host whose rotation failed is rolled back. With O(on_failure=stop) no later batch starts;
    with O(on_failure=stop_service) only hosts that serve one of its services stay as they are,
    and the other services' rollouts go on.
  - A host counts as rolled back when its C(mtls_rotate_outcome) starts with C(rolled back).
  - Called once per batch (C(run_once)), so every host of the rollout is read once, not once per host
    of the batch, which would grow with the square of the fleet.
author: mtls.fleet developers (@mtls-fleet)
positional: batch, hosts, on_failure
options:
  _input:
    description: The C(hostvars) variable.
    type: raw
    required: true
  batch:
    description: The hosts about to start (C(ansible_play_batch)).
    type: list
    elements: str
    required: true
  hosts:
    description: Every host of the rollout.
    type: list
    elements: str
    required: true
  on_failure:
    description: V(stop) or V(stop_service).
    type: str
    default: stop
"""

EXAMPLES = r"""
blockers: "{{ hostvars | mtls.fleet.rollout_blockers(ansible_play_batch, ansible_play_hosts_all, 'stop_service') }}"
"""

RETURN = r"""
_value:
  description: For each host of the batch, the names of the rolled-back hosts that stop it; empty when it may start.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.module_utils import batching
from ansible_collections.mtls.fleet.plugins.filter.rollout_plan import rotation_host


def rollout_blockers(hostvars, batch, hosts, on_failure="stop"):
    rolled_back = [rotation_host(hostvars, name, ()) for name in hosts
                   if str(hostvars[name].get("mtls_rotate_outcome", "")).startswith("rolled back")]
    try:
        return {host: batching.not_started_because(rotation_host(hostvars, host, ()), rolled_back, on_failure) for host in batch}
    except batching.BatchingError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"rollout_blockers": rollout_blockers}
