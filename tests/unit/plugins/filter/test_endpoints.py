"""The endpoints filter: one shape for nginx servers, app endpoints, HAProxy frontends and PostgreSQL, by group membership."""

import os

import yaml

from ansible_collections.mtls.fleet.plugins.filter.app_host_needs import app_host_needs
from ansible_collections.mtls.fleet.plugins.filter.app_problems import app_problems
from ansible_collections.mtls.fleet.plugins.filter.endpoints import POSTGRESQL_PROBE_ROLE, endpoints

HOSTVARS = {
    "web-1": {"mtls_nginx_servers": [{"service": "web", "listen": 8443}],
              "mtls_app_service": "api", "mtls_app_endpoints": [{"port": "9443", "path": "/healthz", "status": 200, "identity": "web"}]},
    "web-2": {"mtls_nginx_servers": [{"service": "web", "listen": 8443, "server_name": "web.example.org"}],
              "mtls_app_service": "api", "mtls_app_endpoints": [{"port": 9443}]},
}


def test_nginx_servers_and_app_endpoints_in_one_shape():
    found = endpoints(HOSTVARS, ["web-1"], ["web-1"], ["web-1"])
    assert found == [
        {"host": "web-1", "kind": "nginx", "service": "web", "port": 8443, "server_name": "web-1", "path": "/", "status": None,
         "identity": "web", "label": "nginx web:8443", "address": "web-1"},
        {"host": "web-1", "kind": "app", "service": "api", "port": 9443, "server_name": "web-1", "path": "/healthz", "status": 200,
         "identity": "web", "label": "app api:9443", "address": "web-1"},
    ]


def test_a_host_contributes_only_what_its_groups_make_it_run():
    found = endpoints(HOSTVARS, ["web-1", "web-2"], ["web-2"], ["web-1"])
    assert [(e["host"], e["kind"]) for e in found] == [("web-1", "app"), ("web-2", "nginx")]
    assert found[1]["server_name"] == "web.example.org"
    assert endpoints(HOSTVARS, ["web-2"], [], []) == []


def test_other_hosts_reach_an_endpoint_at_its_ansible_host():
    hostvars = dict(HOSTVARS, **{"web-2": dict(HOSTVARS["web-2"], ansible_host="10.0.0.2")})
    assert [e["address"] for e in endpoints(hostvars, ["web-1", "web-2"], ["web-2"], ["web-1"])] == ["web-1", "10.0.0.2"]


def test_an_app_endpoint_is_probed_with_the_app_identity_by_default():
    assert endpoints(HOSTVARS, ["web-2"], [], ["web-2"])[0]["identity"] == "api"


def problems(endpoints_, service="api", unit="api.service", action="reload", services=("api", "web"), unit_state=""):
    return app_problems(endpoints_, service, unit, action, list(services), "web-1", unit_state)


def test_good_settings_have_no_problem():
    assert problems([{"port": 9443, "server_name": "api", "path": "/healthz", "status": 200, "identity": "web"}]) == []
    assert problems([], unit="", action="restart") == []


def test_each_bad_input_is_named_with_its_fix():
    assert problems([{"path": "/x"}]) == ["host web-1: mtls_app_endpoints[0] has no port; add port: <the TCP port the app serves mTLS on>"]
    assert "mtls_app_endpoints[0].port 'http' is not a TCP port" in problems([{"port": "http"}])[0]
    assert "mtls_app_endpoints[0].port 70000 is not a TCP port" in problems([{"port": 70000}])[0]
    assert "mtls_app_endpoints[0].status 42 is not an HTTP status" in problems([{"port": 1, "status": 42}])[0]
    assert "mtls_app_endpoints[0].path 'healthz' must start with /" in problems([{"port": 1, "path": "healthz"}])[0]
    assert "has unknown field(s) prot; the fields are port" in problems([{"port": 1, "prot": 2}])[0]
    assert "mtls_app_endpoints[0].identity 'ghost' is not one of this host's mtls_certs_services (api, web)" in \
        problems([{"port": 1, "identity": "ghost"}])[0]
    assert "mtls_app_endpoints[0] must be a mapping" in problems([9443])[0]
    assert "mtls_app_endpoints must be a list" in problems({"port": 1})[0]


def test_the_mode_and_the_identity_are_checked():
    assert "mtls_app_unit_action 'bounce' is not a rotation mode; use reload" in problems([], action="bounce")[0]
    assert "mtls_app_unit_action is reload but mtls_app_unit is empty" in problems([], unit="")[0]
    assert "mtls_app_service (db) must be one of this host's mtls_certs_services (api, web)" in problems([], service="db")[0]


def test_the_unit_read_from_the_host_must_exist_and_reload_when_the_mode_says_so():
    assert "mtls_app_unit api.service is not a unit on the host; install the app" in \
        problems([], unit_state="LoadState=not-found\nCanReload=no")[0]
    assert "mtls_app_unit_action is reload but api.service has no ExecReload=; add ExecReload=/bin/kill -HUP $MAINPID" in \
        problems([], unit_state="LoadState=loaded\nCanReload=no")[0]
    assert problems([], action="restart", unit_state="LoadState=loaded\nCanReload=no") == []
    assert problems([], unit_state="LoadState=loaded\nCanReload=yes") == []


def test_the_host_must_have_the_apps_user_group_and_unit_and_reload_only_when_the_mode_says_so():
    kinds = [[k for k in need if k != "missing"][0] for need in app_host_needs("api", "api.service", "reload", "svc", "svc")]
    assert kinds == ["user", "group", "unit", "unit_reload"]
    needs = app_host_needs("api", "", "restart", "svc", "daemon")
    assert [(n.get("user"), n.get("group")) for n in needs] == [("svc", None), (None, "daemon")]
    assert needs[0]["missing"].startswith("mtls_app_user 'svc' does not exist on the host; create it")
    assert "unit_reload" not in str(app_host_needs("api", "api.service", "restart", "svc", "svc"))


def test_haproxy_frontends_and_postgresql_are_endpoints_of_their_groups():
    hostvars = {"edge-1": {"mtls_haproxy_frontends": [{"service": "edge", "listen": 8443}]},
                "db-1": {"mtls_postgresql_service": "db", "ansible_host": "10.0.0.9"}}
    found = endpoints(hostvars, ["edge-1", "db-1"], [], [], ["edge-1"], ["db-1"])
    assert found == [
        {"host": "edge-1", "kind": "haproxy", "service": "edge", "port": 8443, "server_name": "edge-1", "path": "/", "status": None,
         "identity": "edge", "label": "haproxy edge:8443", "address": "edge-1"},
        {"host": "db-1", "kind": "postgresql", "service": "db", "port": 5432, "server_name": "db-1", "path": "/", "status": None,
         "identity": "db", "label": "postgresql db:5432", "address": "10.0.0.9", "user": "mtls_fleet_probe", "database": "postgres"},
    ]
    assert endpoints(hostvars, ["edge-1", "db-1"], [], []) == []


def test_the_probe_logs_in_as_the_role_the_postgresql_role_maps_the_host_identity_to():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
    with open(os.path.join(root, "roles", "mtls_postgresql", "vars", "main.yml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["__mtls_postgresql_probe_role"] == POSTGRESQL_PROBE_ROLE
