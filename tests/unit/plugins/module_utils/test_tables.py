"""Plans and summaries as aligned lines, readable in the default callback."""

import datetime

from ansible_collections.mtls.fleet.plugins.filter.fleet_table import fleet_table
from ansible_collections.mtls.fleet.plugins.filter.revocation_timing import revocation_timing
from ansible_collections.mtls.fleet.plugins.module_utils import tables
from ansible_collections.mtls.fleet.plugins.test import controller as controller_test


def test_columns_are_as_wide_as_their_widest_cell_and_empty_cells_say_so():
    assert tables.render(("HOST", "SERVICE", "ACTION"), [("web-1", "api", "keep"), ("frontend-12", None, "renew: expires")]) == [
        "HOST         SERVICE  ACTION",
        "web-1        api      keep",
        "frontend-12  -        renew: expires"]


def test_issuance_lists_each_certificate_then_the_counts():
    result = {"certificates": [
        {"name": "web-1-web", "status": "unchanged", "reason": None, "serial": "697D9DC32B56BDF4AA01", "not_after": "2027-03-03T05:54:57Z"},
        {"name": "api-1-api", "status": "issued", "reason": "new", "serial": None, "not_after": None}],
        "summary": {"issued": 1, "renewed": 0, "unchanged": 1}}
    assert tables.issuance(result) == [
        "CERTIFICATE  STATUS     REASON  SERIAL              NOT AFTER",
        "web-1-web    unchanged  -       697D9DC32B56BDF4..  2027-03-03T05:54:57Z",
        "api-1-api    issued     new     (check mode)        -",
        "1 issued, 0 renewed, 1 unchanged"]


def test_fleet_shows_each_proved_endpoint_or_the_files_of_a_host_without_endpoints():
    probe = {"kind": "nginx", "service": "web", "port": 8443, "serial": "697D9DC32B56BDF4AA01",
             "not_after": "2027-03-03T05:54:57Z", "status": 200, "tls_version": "TLSv1.3", "problem": None}
    files = {"name": "db", "serial": "0A1B2C3D4E5F60718293", "not_after": "2027-03-04T00:00:00Z"}
    hostvars = {"web-1": {"mtls_certs_result": {"outcome": "rotated", "probes": [probe]}},
                "db-1": {"mtls_certs_result": {"outcome": "unchanged", "probes": [], "services": [files]}}, "web-2": {}}
    assert fleet_table(hostvars, ["web-1", "db-1", "web-2"]) == [
        "HOST   ENDPOINT   PORT  SERIAL              NOT AFTER             RESULT",
        "web-1  nginx/web  8443  697D9DC32B56BDF4..  2027-03-03T05:54:57Z  rotated, HTTP 200 TLSv1.3",
        "db-1   files/db   -     0A1B2C3D4E5F6071..  2027-03-04T00:00:00Z  unchanged"]


def test_the_controller_is_known_by_its_local_names_only():
    controller = controller_test.TestModule().tests()["controller"]
    assert [controller(name) for name in ("localhost", "127.0.0.1", "::1", "ca-1", "localhost.example.org")] == [
        True, True, True, False, False]


def test_rotation_plan_says_what_the_rollout_will_do_with_each_copy():
    issued = {"certificates": [
        {"name": "api-1-api", "status": "renewed", "detail": "expires in 10 days", "serial": "AA"},
        {"name": "web-1-web", "status": "unchanged", "serial": "BBBBBBBBBBBBBBBBBBBB"},
        {"name": "web-2-web", "status": "unchanged", "serial": "CC"},
        {"name": "db-1-db", "status": "unchanged", "serial": "DD"}]}
    hosts = [("api-1", False, [{"name": "api", "serial": "A0", "days_left": 10, "reason": "expiring"}], [{"name": "api-1-api"}]),
             ("web-1", False, [{"name": "web", "reason": "corrupt", "renew": True}], [{"name": "web-1-web"}]),
             ("web-2", False, [{"name": "web", "serial": "CC", "days_left": 80, "reason": None}], [{"name": "web-2-web"}]),
             ("db-1", True, [{"name": "db", "serial": "DD", "days_left": 80, "reason": None}], [{"name": "db-1-db"}])]
    assert tables.rotation_plan(hosts, issued) == [
        "HOST   SERVICE  SERIAL NOW  DAYS LEFT  VERDICT   ACTION",
        "api-1  api      A0          10         expiring  renew: expires in 10 days",
        "web-1  web      -           -          corrupt   install BBBBBBBBBBBBBBBB from the CA store",
        "web-2  web      CC          80         ok        keep",
        "db-1   db       DD          80         ok        renew (forced)"]


def test_rotation_summary_shows_each_serial_before_and_after_and_the_outcome():
    hosts = [("web-1", [{"name": "web", "serial": "A1", "not_after": "2027-01-01"}], [{"name": "web", "serial": "B1", "not_after": "2027-03-01"}],
              "rotated"),
             ("web-2", [{"name": "web", "serial": "A2", "not_after": "2027-01-01"}], [], "lost during its rollout"),
             ("web-3", [{"name": "web"}], [], "not reached")]
    assert tables.rotation_summary(hosts) == [
        "HOST   SERVICE  OLD SERIAL      NOW SERVING  NOT AFTER   RESULT",
        "web-1  web      A1          ->  B1           2027-03-01  rotated",
        "web-2  web      A2          ->  ?            2027-01-01  lost during its rollout",
        "web-3  web      -           ->  -            -           not reached"]


def test_trust_shows_what_an_old_ca_and_a_new_ca_client_got_at_each_endpoint():
    nginx = {"endpoint": "nginx web:8443", "kind": "nginx", "service": "web", "port": 8443}
    app = {"endpoint": "app api:9443", "kind": "app", "service": "api", "port": 9443}
    probes = [dict(nginx, identity="old", client="accepted"), dict(nginx, identity="new", client="accepted"),
              dict(app, identity="old", client="refused"), dict(app, identity="new", client="accepted")]
    assert tables.trust([("web-1", probes), ("web-2", [])]) == [
        "HOST   ENDPOINT   PORT  OLD-CA CLIENT  NEW-CA CLIENT",
        "web-1  nginx/web  8443  accepted       accepted",
        "web-1  app/api    9443  refused        accepted"]


def test_revocation_timing_shows_each_refusal_the_slowest_and_who_missed_the_crls():
    records = [{"host": "web-1", "label": "nginx web:8443", "refused": True, "seconds": 4.5},
               {"host": "api-1", "label": "app api:9443", "refused": True, "seconds": 5.25},
               {"host": "api-2", "label": "app api:9443", "refused": False, "seconds": None}]
    now = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.timezone.utc)
    lines = tables.revocation_timing([("client-1", records), ("client-2", None)], ["web-9"], "2026-12-31T12:00:00Z", now)
    assert lines[:5] == [
        "REVOKED HOST  ENDPOINT                                               REFUSED AFTER",
        "client-1      web-1 nginx web:8443                                   4.50 s",
        "client-1      api-1 app api:9443                                     5.25 s",
        "client-1      api-2 app api:9443                                     still accepted",
        "client-2      (not reached: its refusal could not be timed from it)  -",
    ]
    assert lines[5] == "2 endpoint refusals timed from the revocation's start; the fleet's slowest: 5.25 s (api-1 app api:9443)"
    assert lines[6].startswith("web-9 did not get the new CRLs (unreachable or failed): it accepts the revoked certificates until it does, "
                               "and refuses every client after its CRLs' next update, 2026-12-31T12:00:00Z (in 25.0 days)")
    hostvars = {"client-1": {"mtls_revoke_timing": {"endpoints": records}, "mtls_revoke_published": True},
                "web-1": {"mtls_revoke_published": True}, "web-9": {}}
    table = revocation_timing(hostvars, ["client-1", "web-1", "web-9"], ["client-1"], {"replaced_next_update": None})
    assert table[-1] == "web-9 did not get the new CRLs (unreachable or failed): it accepts the revoked certificates until it does"
    assert tables.revocation_timing([], [], None, now) == [
        "No revoked certificate belongs to an inventory host (revoked by serial or name), so no refusal was timed"]
