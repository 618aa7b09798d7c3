"""The rollout filters read the fleet from hostvars: services from mtls_certs_services, and
whether a host's app restarts from the apps group and mtls_app_unit_action."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.filter.rollout_blockers import rollout_blockers
from ansible_collections.mtls.fleet.plugins.filter.rollout_plan import rollout_plan

HOSTVARS = {
    "backend-1": {"mtls_certs_services": [{"name": "backend"}], "mtls_app_unit_action": "restart"},
    "backend-2": {"mtls_certs_services": [{"name": "backend"}]},
    "frontend-1": {"mtls_certs_services": [{"name": "frontend"}]},
    "api-1": {"mtls_certs_services": [{"name": "api"}], "mtls_app_unit_action": "reload"},
    "api-2": {"mtls_certs_services": [{"name": "api"}], "mtls_app_unit_action": "reload"},
    "api-3": {"mtls_certs_services": [{"name": "api"}], "mtls_app_unit_action": "reload"},
    "api-4": {"mtls_certs_services": [{"name": "api"}], "mtls_app_unit_action": "reload"},
}
APPS = ["backend-1", "backend-2", "api-1", "api-2", "api-3", "api-4"]


def test_the_plan_for_the_fleet():
    plan = rollout_plan(HOSTVARS, list(HOSTVARS), APPS, None, None, None)
    # backends restart (one of two at once); the apis only reload (two of four at once)
    assert plan["limits"] == {"backend": 1, "frontend": 1, "api": 2}
    assert plan["batches"] == [["backend-1", "frontend-1", "api-1", "api-2"], ["backend-2", "api-3", "api-4"]]
    assert plan["sizes"] == [4, 3]
    assert plan["lines"][0] == "batch 1 of 2: backend-1, frontend-1, api-1, api-2"


def test_an_app_outside_the_apps_group_is_not_restarted():
    plan = rollout_plan(HOSTVARS, ["backend-1", "backend-2"], [], "25%", "100%", None)
    assert plan["batches"] == [["backend-1", "backend-2"]]


def test_bad_settings_are_filter_errors():
    with pytest.raises(AnsibleFilterError, match="mtls_rotate_max_in_flight: 'none' is neither"):
        rollout_plan(HOSTVARS, list(HOSTVARS), APPS, "none", None, None)
    with pytest.raises(AnsibleFilterError, match="mtls_rotate_on_failure: 'later'"):
        rollout_blockers(HOSTVARS, ["api-1"], [], "later")


def test_blockers_are_the_rolled_back_hosts():
    hostvars = dict(HOSTVARS, **{"backend-1": dict(HOSTVARS["backend-1"], mtls_rotate_outcome="rolled back"),
                                 "frontend-1": dict(HOSTVARS["frontend-1"], mtls_rotate_outcome="rotated")})
    assert rollout_blockers(hostvars, ["api-3", "backend-2"], list(hostvars), "stop") == {"api-3": ["backend-1"], "backend-2": ["backend-1"]}
    assert rollout_blockers(hostvars, ["api-3", "backend-2"], list(hostvars), "stop_service") == {"api-3": [], "backend-2": ["backend-1"]}
    assert rollout_blockers(hostvars, [], list(hostvars), "stop") == {}
