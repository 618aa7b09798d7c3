# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_plan
short_description: The rotation's batches, so that every service keeps enough replicas serving
version_added: 0.4.0
description:
  - Puts the hosts into batches (the rollout play's C(serial)) so that no batch holds more of a
    service's replicas than the service's limit. Different services progress in parallel.
  - A service is the name of a certificate in C(mtls_certs_services); its replicas are the hosts
    that serve it. Its limit is O(max_in_flight) of its replicas, or O(max_in_flight_reload) when
    every replica reloads gracefully (no app in the apps group, or the app's
    C(mtls_app_unit_action) is V(reload)). At least one replica is always allowed.
  - Bad limits are an error naming the variable and the fix.
author: mtls.fleet developers (@mtls-fleet)
positional: hosts, app_hosts, max_in_flight, max_in_flight_reload, max_batch_size
options:
  _input:
    description: The C(hostvars) variable.
    type: raw
    required: true
  hosts:
    description: The hosts to roll out, in inventory order.
    type: list
    elements: str
    required: true
  app_hosts:
    description: The hosts of the apps group.
    type: list
    elements: str
    required: true
  max_in_flight:
    description: Replicas of a service in one batch, as a count (V(1)) or a share (V(25%)).
    type: str
    default: 25%
  max_in_flight_reload:
    description: The same for a service whose replicas all reload gracefully.
    type: str
    default: 50%
  max_batch_size:
    description: At most this many hosts in one batch (empty for no cap).
    type: str
"""

EXAMPLES = r"""
plan: "{{ hostvars | mtls.fleet.rollout_plan(ansible_play_hosts, groups['mtls_apps'] | default([]), '25%', '50%', '') }}"
"""

RETURN = r"""
_value:
  description:
    - C(batches) (lists of host names, in rollout order), C(sizes) (their lengths, for C(serial)),
      C(lines) (the plan as printed), C(limits) (service to replicas allowed at once).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.module_utils import batching


def rotation_host(hostvars, name, app_hosts) -> batching.Host:
    """What batching needs of a host: its services, and whether its apps only reload."""
    facts = hostvars[name]
    services = tuple(service["name"] for service in facts.get("mtls_certs_services") or [])
    graceful = name not in app_hosts or facts.get("mtls_app_unit_action") == "reload"
    return batching.Host(name=name, services=services, graceful=graceful)


def rollout_plan(hostvars, hosts, app_hosts, max_in_flight=batching.DEFAULT_MAX_IN_FLIGHT,
                 max_in_flight_reload=batching.DEFAULT_MAX_IN_FLIGHT_RELOAD, max_batch_size=None):
    try:
        plan = batching.plan([rotation_host(hostvars, name, app_hosts) for name in hosts], max_in_flight, max_in_flight_reload,
                             max_batch_size)
    except batching.BatchingError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {"batches": [list(batch) for batch in plan.batches], "sizes": [len(batch) for batch in plan.batches],
            "lines": plan.lines(), "limits": plan.limits}


class FilterModule:
    def filters(self):
        return {"rollout_plan": rollout_plan}
