"""What the revoke playbook revokes: by host, service, certificate name or serial."""

from ansible_collections.mtls.fleet.plugins.filter.revocation_requests import revocation_requests
from ansible_collections.mtls.fleet.plugins.module_utils import tables

HOSTVARS = {"web-1": {"mtls_certs_services": [{"name": "web"}, {"name": "api"}]},
            "web-2": {"mtls_certs_services": [{"name": "web"}]},
            "client-1": {"mtls_certs_services": [{"name": "client"}]},
            "db-1": {}}
FLEET = ["web-1", "web-2", "client-1"]


def test_a_host_revokes_all_its_certificates_and_a_service_its_certificate_on_every_host():
    found = revocation_requests(HOSTVARS, FLEET, ["client-1"], "api, web", "", "", "key_compromise")
    assert found == {"hosts": ["web-1", "web-2", "client-1"], "requests": [
        {"name": "web-1-web", "reason": "key_compromise", "host": "web-1"}, {"name": "web-1-api", "reason": "key_compromise", "host": "web-1"},
        {"name": "web-2-web", "reason": "key_compromise", "host": "web-2"},
        {"name": "client-1-client", "reason": "key_compromise", "host": "client-1"}]}


def test_names_and_serials_are_taken_as_given_once_each():
    found = revocation_requests(HOSTVARS, FLEET, [], [], "web-2-web,web-2-web, ", ["7F3A"], "superseded")
    assert found == {"hosts": [], "requests": [{"name": "web-2-web", "reason": "superseded"}, {"serial": "7F3A", "reason": "superseded"}]}


def test_nothing_selected_is_an_empty_list_for_the_playbook_to_refuse():
    assert revocation_requests(HOSTVARS, FLEET, ["db-1"], "", "", "", "key_compromise") == {"hosts": [], "requests": []}


def test_the_table_lists_each_entry_then_the_crls():
    crl = {"revoked": [{"name": "client-1-client", "serial": "7F3A", "reason": "key_compromise", "status": "revoked"},
                       {"name": None, "serial": "01BC", "reason": "superseded", "status": "already revoked"}],
           "crls": [{"revoked": 2}, {"revoked": 1}], "next_update": "2026-12-10T00:00:00Z"}
    assert tables.revocation(crl, False) == [
        "CERTIFICATE      SERIAL  REASON          STATUS",
        "client-1-client  7F3A    key_compromise  revoked",
        "-                01BC    superseded      already revoked",
        "CRLs: 3 revoked in all, next update 2026-12-10T00:00:00Z"]
