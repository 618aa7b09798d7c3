"""Every inventory value that reaches nginx's configuration is what its directive takes, or refused by name."""

import pytest

from ansible_collections.mtls.fleet.plugins.filter.nginx_problems import SETTINGS, nginx_problems

GOOD_SERVER = {"service": "web", "listen": 8443, "allow": ["api"], "proxy_pass": "http://127.0.0.1:8080"}
GOOD_UPSTREAM = {"name": "api", "service": "web", "servers": ["api-1:8443", "[fd00::5]:8443", "10.0.0.5"], "server_name": "api",
                 "listen": "127.0.0.1:9001", "read_timeout": "30s", "connect_timeout": "500ms"}
GOOD_SETTINGS = {"upstream_connect_timeout": "2s", "upstream_read_timeout": "1m30s", "certs_dir": "/etc/mtls",
                 "protocols": ["TLSv1.2", "TLSv1.3"], "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
                 "verify_depth": 2, "access_log": "/var/log/nginx/mtls-fleet.access.log"}

# Each value, written as it is, adds directives that `nginx -t` accepts (the preflight scenario shows it on a real nginx).
BREAK_OUT = [
    "http://127.0.0.1:8080;\n    }\n    location /open {\n        proxy_pass http://127.0.0.1:8080",
    "x; include /etc/passwd",
    "a}",
    "b{",
    "c\nlisten 80",
    "'quoted'",
    '"quoted"',
    "$host",
    "# comment",
    "with space",
    "\x00",
]


def problems(server=None, upstream=None, settings=None, host="web-1"):
    return nginx_problems([dict(GOOD_SERVER, **(server or {}))], [dict(GOOD_UPSTREAM, **(upstream or {}))], ["web"], ["web", "api"],
                          "example.org", host, dict(GOOD_SETTINGS, **(settings or {})))


def test_good_values_pass():
    assert problems() == []
    assert problems(server={"listen": "[::]:8443", "server_name": "web-1 *.example.com www.example.* .example.org _",
                            "proxy_pass": "https://[::1]:8080/api/v1/", "locations": [{"path": "/admin/", "allow": ["web"]}]}) == []
    assert problems(upstream={"listen": "*:9001", "read_timeout": 60}, settings={"access_log": "off", "verify_depth": "3"}) == []
    assert problems(settings={}) == []


FIELDS = [("server", "listen"), ("server", "server_name"), ("server", "proxy_pass"), ("upstream", "listen"), ("upstream", "server_name"),
          ("upstream", "read_timeout"), ("upstream", "connect_timeout")]


@pytest.mark.parametrize("where,field,hostile", [
    (where, field, hostile) for where, field in FIELDS for hostile in BREAK_OUT
    if (where, field, hostile) != ("server", "server_name", "with space")  # two names: what server_name takes
])
def test_a_value_that_would_add_directives_is_refused_naming_host_and_field(where, field, hostile):
    found = problems(**{where: {field: hostile}})
    prefix = "mtls_nginx_servers[0]" if where == "server" else "mtls_nginx_upstreams[0]"
    assert len(found) == 1 and found[0].startswith(f"host web-1: {prefix}.{field}: {hostile!r} cannot go into nginx's configuration; ")


@pytest.mark.parametrize("hostile", BREAK_OUT)
def test_location_paths_upstream_servers_and_settings_are_checked_too(hostile):
    found = problems(server={"locations": [{"path": hostile, "allow": ["web"]}]})
    assert [p.split(":")[1] for p in found] == [" mtls_nginx_servers[0].locations[0].path"]
    found = problems(upstream={"servers": ["api-1:8443", hostile]})
    assert [p.split(":")[1] for p in found] == [" mtls_nginx_upstreams[0].servers[1]"]
    for name in ("upstream_connect_timeout", "upstream_read_timeout", "certs_dir", "ciphers", "access_log"):
        found = problems(settings={name: hostile})
        assert len(found) == 1 and found[0].startswith(f"host web-1: mtls_nginx_{name}: {hostile!r} cannot go"), (name, found)


@pytest.mark.parametrize("settings,field", [
    ({"protocols": ["TLSv1.3; ssl_verify_client off"]}, "protocols"), ({"protocols": []}, "protocols"),
    ({"protocols": "TLSv1.3"}, "protocols"), ({"verify_depth": "2; ssl_verify_client off"}, "verify_depth"),
    ({"verify_depth": 0}, "verify_depth"), ({"verify_depth": True}, "verify_depth"),
])
def test_tls_settings_are_refused_unless_nginx_takes_them(settings, field):
    found = problems(settings=settings)
    assert len(found) == 1 and found[0].startswith(f"host web-1: mtls_nginx_{field}: "), found


@pytest.mark.parametrize("value", ["0", "65536", "80 ssl", "host", "::1:80", "[::1]", "[zz::1]:80", "-bad-:80", "unix:/run/x.sock"])
def test_listen_takes_a_port_or_address_and_port(value):
    assert problems(upstream={"listen": value})[0].startswith(f"host web-1: mtls_nginx_upstreams[0].listen: {value!r} cannot go")


@pytest.mark.parametrize("value", ["ftp://x", "http://", "http://user@x/", "http://x:99999/", "http://x/$request_uri", "http://x/a b",
                                   "unix:/run/app.sock", "http://x/;"])
def test_proxy_pass_takes_a_plain_url(value):
    assert len(problems(server={"proxy_pass": value})) == 1


def test_the_default_server_name_is_the_inventory_hostname_and_checked_as_one():
    assert problems(host="web 1")[0] == ("host web 1: mtls_nginx_servers[0].server_name: the default, the inventory hostname 'web 1', "
                                         "is not a host name; set server_name")
    assert problems(server={"server_name": "web-1"}, host="web 1") == []


def test_every_setting_has_its_check():
    assert set(GOOD_SETTINGS) == set(SETTINGS)
