"""Rotation batches: every service keeps enough replicas serving, services progress in parallel."""

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import batching
from ansible_collections.mtls.fleet.plugins.module_utils.batching import Host


def fleet(services, replicas, graceful=False):
    """Hosts svc-N for each service, replicas each, in inventory order service by service."""
    return [Host(f"{service}-{n}", (service,), graceful) for service in services for n in range(1, replicas + 1)]


def in_flight(plan, hosts):
    """The most replicas of any one service in any one batch, per service."""
    by_name = {host.name: host for host in hosts}
    worst = {}
    for batch in plan.batches:
        counts = {}
        for name in batch:
            for service in by_name[name].services:
                counts[service] = counts.get(service, 0) + 1
        for service, count in counts.items():
            worst[service] = max(worst.get(service, 0), count)
    return worst


def test_four_services_of_twelve_replicas_go_in_four_batches_of_twelve():
    hosts = fleet(["api", "web", "db", "cache"], 12)
    plan = batching.plan(hosts, "25%")
    assert [len(batch) for batch in plan.batches] == [12, 12, 12, 12]
    assert in_flight(plan, hosts) == {"api": 3, "web": 3, "db": 3, "cache": 3}
    assert sorted(name for batch in plan.batches for name in batch) == sorted(host.name for host in hosts)
    assert plan.lines()[0].startswith("batch 1 of 4: api-1, api-2, api-3, web-1,")
    assert "  api: at most 3 of 12 replicas at once" in plan.lines()


def test_one_replica_at_a_time_is_the_least_whatever_the_share():
    hosts = fleet(["api"], 3) + fleet(["solo"], 1)
    plan = batching.plan(hosts, "25%")
    assert plan.batches == (("api-1", "solo-1"), ("api-2",), ("api-3",))
    assert plan.limits == {"api": 1, "solo": 1}


def test_a_count_instead_of_a_share():
    plan = batching.plan(fleet(["api"], 5), "2")
    assert [len(batch) for batch in plan.batches] == [2, 2, 1]


def test_services_that_only_reload_may_have_more_in_flight():
    hosts = fleet(["edge"], 8, graceful=True) + fleet(["app"], 8, graceful=False)
    plan = batching.plan(hosts, "25%", "50%")
    assert plan.limits == {"edge": 4, "app": 2}
    assert in_flight(plan, hosts) == {"edge": 4, "app": 2}


def test_a_service_with_one_replica_that_restarts_is_held_to_the_restart_limit():
    hosts = [Host("edge-1", ("edge",), True), Host("edge-2", ("edge",), True), Host("edge-3", ("edge",), False),
             Host("edge-4", ("edge",), True)]
    assert batching.plan(hosts, "25%", "50%").limits == {"edge": 1}


def test_a_host_with_several_services_counts_against_each():
    hosts = [Host("a", ("web", "api"), False), Host("b", ("web",), False), Host("c", ("api",), False), Host("d", ("web", "api"), False)]
    plan = batching.plan(hosts, "1")
    assert plan.batches == (("a",), ("b", "c"), ("d",))


def test_the_serial_cap_limits_hosts_per_batch():
    plan = batching.plan(fleet(["api", "web"], 4), "50%", max_batch_size="3")
    assert [len(batch) for batch in plan.batches] == [3, 3, 2]
    assert in_flight(plan, fleet(["api", "web"], 4)) == {"api": 2, "web": 2}
    assert batching.plan(fleet(["api"], 3), "100%", max_batch_size=1).batches == (("api-1",), ("api-2",), ("api-3",))


@pytest.mark.parametrize("variable, kwargs", [
    ("mtls_rotate_max_in_flight", {"max_in_flight": "0"}),
    ("mtls_rotate_max_in_flight", {"max_in_flight": "a quarter"}),
    ("mtls_rotate_max_in_flight", {"max_in_flight": "150%"}),
    ("mtls_rotate_max_in_flight_reload", {"max_in_flight_reload": "-1"}),
    ("mtls_rotate_serial", {"max_batch_size": "25%"}),
])
def test_bad_limits_name_the_variable_and_the_fix(variable, kwargs):
    with pytest.raises(batching.BatchingError, match=f"^{variable}: .*(for example)"):
        batching.plan(fleet(["api"], 2), **kwargs)


def test_unset_limits_take_the_defaults():
    assert batching.plan(fleet(["api"], 8), None, "", None).limits == {"api": 2}


def test_a_failure_stops_every_later_batch_or_only_its_services_hosts():
    failed = Host("web-1", ("web",), False)
    assert batching.not_started_because(Host("api-2", ("api",), False), [failed], "stop") == ["web-1"]
    assert batching.not_started_because(Host("api-2", ("api",), False), [failed], None) == ["web-1"]
    assert batching.not_started_because(Host("api-2", ("api",), False), [failed], "stop_service") == []
    assert batching.not_started_because(Host("web-2", ("web", "api"), False), [failed], "stop_service") == ["web-1"]
    assert batching.not_started_because(Host("web-2", ("web",), False), [], "stop") == []
    with pytest.raises(batching.BatchingError, match="^mtls_rotate_on_failure: 'halt' is not one of stop, stop_service"):
        batching.not_started_because(failed, [], "halt")
