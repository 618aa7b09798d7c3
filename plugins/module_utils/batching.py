# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotation batches that keep every service available. No Ansible imports.

A rotation takes hosts out of service in batches (Ansible's ``serial``). A batch may hold any
hosts as long as, for every service, no more of its replicas are in it than the service's limit:
different services progress in parallel, and the replicas of one service take turns. A service
whose replicas all reload gracefully (nginx, apps in reload mode) may have a larger share in
flight than one whose apps restart (requests fail while an app is down).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_MAX_IN_FLIGHT = "25%"
DEFAULT_MAX_IN_FLIGHT_RELOAD = "50%"
ON_FAILURE = ("stop", "stop_service")


class BatchingError(ValueError):
    pass


@dataclass(frozen=True)
class Limit:
    """A count of replicas (2) or a share of them (25%); at least one replica is always allowed."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, raw, variable) -> Limit:
        text = str(raw).strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)%", text)
        if match and 0 < float(match.group(1)) <= 100:
            return cls(percent=float(match.group(1)))
        if re.fullmatch(r"\d+", text) and int(text) > 0:
            return cls(count=int(text))
        raise BatchingError(f"{variable}: {raw!r} is neither a count of replicas (for example 1) nor a share of them "
                            f"(for example 25%); set it to one of those")

    def of(self, replicas: int) -> int:
        if self.count is not None:
            return self.count
        return max(1, math.floor(replicas * self.percent / 100 + 1e-9))


@dataclass(frozen=True)
class Host:
    name: str
    services: tuple  # the service (certificate) names it serves
    graceful: bool  # every change it needs is a graceful reload (no app restart)


@dataclass(frozen=True)
class Plan:
    batches: tuple  # tuples of host names, in rollout order
    limits: dict  # service -> replicas allowed in one batch
    replicas: dict  # service -> how many hosts serve it

    def lines(self) -> list:
        """The plan as the play prints it: one line per batch, then each service's limit."""
        out = [f"batch {number} of {len(self.batches)}: {', '.join(batch)}" for number, batch in enumerate(self.batches, 1)]
        out += [f"  {service}: at most {self.limits[service]} of {self.replicas[service]} replicas at once"
                for service in sorted(self.limits)]
        return out


def plan(hosts, max_in_flight=DEFAULT_MAX_IN_FLIGHT, max_in_flight_reload=DEFAULT_MAX_IN_FLIGHT_RELOAD, max_batch_size=None) -> Plan:
    """Batches for hosts (in inventory order): first fit, so each host goes in the earliest batch
    where every one of its services still has room; max_batch_size caps hosts per batch."""
    restart_limit = Limit.parse(_or_default(max_in_flight, DEFAULT_MAX_IN_FLIGHT), "mtls_rotate_max_in_flight")
    reload_limit = Limit.parse(_or_default(max_in_flight_reload, DEFAULT_MAX_IN_FLIGHT_RELOAD), "mtls_rotate_max_in_flight_reload")
    cap = _batch_size_cap(max_batch_size)
    replicas, graceful = {}, {}
    for host in hosts:
        for service in host.services:
            replicas[service] = replicas.get(service, 0) + 1
            graceful[service] = graceful.get(service, True) and host.graceful
    limits = {service: (reload_limit if graceful[service] else restart_limit).of(count) for service, count in replicas.items()}
    batches, load = [], []  # load[i]: service -> replicas in batch i
    for host in hosts:
        for index, batch in enumerate(batches):
            fits = all(load[index].get(service, 0) < limits[service] for service in host.services)
            if fits and (cap is None or len(batch) < cap):
                break
        else:
            batches.append([])
            load.append({})
            index = len(batches) - 1
        batches[index].append(host.name)
        for service in host.services:
            load[index][service] = load[index].get(service, 0) + 1
    return Plan(batches=tuple(tuple(batch) for batch in batches), limits=limits, replicas=replicas)


def _or_default(raw, default):
    return default if raw is None or raw == "" else raw


def _batch_size_cap(raw):
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if re.fullmatch(r"\d+", text) and int(text) > 0:
        return int(text)
    raise BatchingError(f"mtls_rotate_serial: {raw!r} must be a count of hosts per batch (for example 4), or unset for no cap")


def not_started_because(host: Host, rolled_back, on_failure: str) -> list:
    """The rolled-back hosts that keep host from starting (empty: it may go on).

    rolled_back: Hosts whose rollout failed and was rolled back. on_failure "stop" stops every later
    batch; "stop_service" stops only hosts that serve a service one of them serves."""
    on_failure = _or_default(on_failure, ON_FAILURE[0])
    if on_failure not in ON_FAILURE:
        raise BatchingError(f"mtls_rotate_on_failure: {on_failure!r} is not one of {', '.join(ON_FAILURE)}")
    if on_failure == "stop":
        return [other.name for other in rolled_back]
    return [other.name for other in rolled_back if set(other.services) & set(host.services)]
