"""HAProxy's and PostgreSQL's settings are checked before anything changes: each value that reaches
their configuration is what its keyword takes, and the services are the host's own, in the
formats and with the group the server needs."""

import pytest

from ansible_collections.mtls.fleet.plugins.filter.haproxy_problems import haproxy_problems
from ansible_collections.mtls.fleet.plugins.filter.postgresql_problems import postgresql_problems

SERVICES = [{"name": "edge", "formats": ["haproxy"]}, {"name": "db", "group": "postgres"}, {"name": "plain"}]
IDENTITIES = ["edge", "db", "client", "api"]
FRONTEND = {"service": "edge", "listen": 8443, "allow": ["client"], "backend": "api"}
BACKEND = {"name": "api", "service": "edge", "servers": ["java-1:9443", "10.0.0.5:9443"], "server_name": "java-1"}
HAPROXY_SETTINGS = {"timeout_connect": "2s", "timeout_client": "30s", "timeout_server": "500ms", "certs_dir": "/etc/mtls",
                    "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"}
PG_SETTINGS = {"hba_lines": ["host all all 10.0.0.0/8 scram-sha-256"], "listen_addresses": "*", "port": 5432, "version": "15",
               "cluster": "main", "certs_dir": "/etc/mtls"}
# Each would add a keyword, a line or a section if written as it is.
BREAK_OUT = ["x\nfrontend open", "a b", "x#y", "'q'", '"q"', "x;y", ""]


def haproxy(frontend=None, backend=None, settings=None):
    return haproxy_problems([dict(FRONTEND, **(frontend or {}))], [dict(BACKEND, **(backend or {}))], SERVICES, IDENTITIES, "edge-1",
                            dict(HAPROXY_SETTINGS, **(settings or {})))


def postgresql(client=None, service="db", settings=None, services=None):
    return postgresql_problems([dict({"identity": "client", "role": "app", "database": "appdb", "address": "10.0.0.0/8"}, **(client or {}))],
                               service, services or SERVICES, IDENTITIES, "db-1", dict(PG_SETTINGS, **(settings or {})))


def test_good_settings_have_no_problem():
    assert haproxy() == []
    assert postgresql() == []
    assert postgresql({"database": "all", "address": "all"}) == []


@pytest.mark.parametrize("value", BREAK_OUT)
@pytest.mark.parametrize("where", [("backend", "name"), ("backend", "server_name"), ("settings", "timeout_connect"), ("settings", "ciphers")])
def test_a_haproxy_value_that_could_add_a_keyword_is_refused_by_name(where, value):
    kind, field = where
    found = haproxy(**{kind: {field: value}})
    assert any(f"{field}: {value!r} cannot go into HAProxy's configuration" in problem for problem in found), found


def test_haproxy_needs_the_combined_file_its_backends_and_known_identities():
    found = haproxy({"service": "plain", "backend": "nowhere", "allow": ["mallory"], "listen": 70000}, {"servers": ["java-1 9443"]})
    text = "\n".join(found)
    assert "host edge-1: mtls_haproxy_frontends[0].service 'plain': HAProxy reads a certificate's chain and key from one file; " \
           "add formats: [haproxy] to service 'plain' in mtls_certs_services" in text
    assert "mtls_haproxy_frontends[0].backend 'nowhere' is not in mtls_haproxy_backends" in text
    assert "mtls_haproxy_frontends[0].allow: 'mallory' is not an identity the CA issues" in text
    assert "mtls_haproxy_frontends[0].listen: 70000 cannot go into HAProxy's configuration; write a TCP port (1-65535)" in text
    assert "mtls_haproxy_backends[0].servers[0]: 'java-1 9443' cannot go into HAProxy's configuration" in text
    assert "mtls_haproxy_frontends[0].service 'nobody' is not one of this host's mtls_certs_services (db, edge, plain)" in \
        "\n".join(haproxy({"service": "nobody"}))


@pytest.mark.parametrize("value", BREAK_OUT)
@pytest.mark.parametrize("field", ["role", "database", "address"])
def test_a_postgresql_value_that_could_add_a_line_is_refused_by_name(field, value):
    found = postgresql({field: value})
    assert any(f"mtls_postgresql_clients[0].{field}: {value!r} cannot go into PostgreSQL's settings" in problem for problem in found), found


def test_postgresql_needs_its_own_service_readable_by_postgres_and_known_identities():
    assert "mtls_postgresql_service 'plain': PostgreSQL reads its key as user postgres" in "\n".join(postgresql(service="plain"))
    assert "mtls_postgresql_service 'nope' is not one of this host's mtls_certs_services" in "\n".join(postgresql(service="nope"))
    assert "mtls_postgresql_clients[0].identity 'mallory' is not an identity the CA issues" in "\n".join(postgresql({"identity": "mallory"}))
    assert "mtls_postgresql_hba_lines: ['host all all\\nlocal all all trust'] cannot go into PostgreSQL's settings" in \
        "\n".join(postgresql(settings={"hba_lines": ["host all all\nlocal all all trust"]}))
    assert "mtls_postgresql_port: 'x' cannot go" in "\n".join(postgresql(settings={"port": "x"}))
    assert "write the range with its prefix length" in "\n".join(postgresql({"address": "10.0.0.1"}))
