"""install_services: the issuance's record joined to the host's services, as certificate_files installs them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.filter.install_services import install_services

SERVICES = [{"name": "web"}, {"name": "api", "group": "www-data", "formats": ["pkcs12"]}]
REQUESTS = [{"name": "web-1-web"}, {"name": "web-1-api"}]


def issued(key_paths=True):
    return {"certificates": [
        {"name": "other-host", "certificate": "OTHER", "key_path": "/ca/issued/other-host/key.pem"},
        *({"name": r["name"], "certificate": f"CERT {r['name']}", "key_path": f"/ca/issued/{r['name']}/key.pem" if key_paths else None}
          for r in REQUESTS)]}


def test_central_keys_go_with_their_certificates_readable_by_the_service_group_only_in_the_formats_asked_for():
    keys = {"/ca/issued/web-1-web/key.pem": "KEY web", "/ca/issued/web-1-api/key.pem": "KEY api"}
    entries = install_services(SERVICES, REQUESTS, issued(), "/etc/mtls", keys)
    assert entries == [
        {"name": "web", "path": "/etc/mtls/web", "certificate": "CERT web-1-web", "private_key": "KEY web", "next_key_path": None,
         "group": "root", "key_mode": "0600", "formats": []},
        {"name": "api", "path": "/etc/mtls/api", "certificate": "CERT web-1-api", "private_key": "KEY api", "next_key_path": None,
         "group": "www-data", "key_mode": "0640", "formats": ["pkcs12"]},
    ]


def test_keys_kept_on_the_host_never_travel_and_the_next_key_waits_where_the_csr_module_left_it():
    csrs = [{"next_path": "/etc/mtls/.web.next-key.pem"}, {"next_path": "/etc/mtls/.api.next-key.pem"}]
    entries = install_services(SERVICES, REQUESTS, issued(key_paths=False), "/etc/mtls", {}, csrs)
    assert [(e["private_key"], e["next_key_path"]) for e in entries] == [(None, csrs[0]["next_path"]), (None, csrs[1]["next_path"])]


def test_a_missing_certificate_or_key_is_named():
    with pytest.raises(AnsibleFilterError, match="service web: the issuance returned no certificate 'web-1-web'"):
        install_services(SERVICES, REQUESTS, {"certificates": []}, "/etc/mtls", {})
    with pytest.raises(AnsibleFilterError, match="service web: no key was read from /ca/issued/web-1-web/key.pem on the CA host"):
        install_services(SERVICES, REQUESTS, issued(), "/etc/mtls", {})
