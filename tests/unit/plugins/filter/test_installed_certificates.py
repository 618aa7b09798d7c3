"""installed_certificates: the host's installed files, judged against what the CA is asked for."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests
from ansible_collections.mtls.fleet.plugins.filter.installed_certificates import installed_certificates

SERVICES = [{"name": "web", "dns_names": ["web-1", "web"]}, {"name": "client", "profile": "client"}]


def test_each_service_is_read_where_it_is_installed_and_judged_as_the_ca_is_asked():
    entries = installed_certificates(SERVICES, "web-1", "example.org", "/etc/mtls")
    requests = certificate_requests(SERVICES, "web-1", "example.org")
    assert [(e["name"], e["path"], e["privatekey_path"]) for e in entries] == [
        ("web", "/etc/mtls/web/cert.pem", "/etc/mtls/web/key.pem"), ("client", "/etc/mtls/client/cert.pem", "/etc/mtls/client/key.pem")]
    assert [(e["common_name"], e["subject_alt_name"], e["profile"]) for e in entries] == [
        (r["common_name"], r["subject_alt_name"], r["profile"]) for r in requests]


def test_a_bad_service_names_the_host_and_the_variable():
    with pytest.raises(AnsibleFilterError, match=r"host web-1: mtls_certs_services\[0\] \(web\): dns_names: 'DNS:bad name'"):
        installed_certificates([{"name": "web", "dns_names": ["bad name"]}], "web-1", "example.org", "/etc/mtls")
