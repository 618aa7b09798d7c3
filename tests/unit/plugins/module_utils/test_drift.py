"""Drift: each kind found from what a host serves, its files and the CA's record; nothing when
they agree; the fleet table and the ledger's verdict beside it."""

from ansible_collections.mtls.fleet.plugins.module_utils import drift

RECORD = {
    "issued": {"A1": {"name": "web-1-web"}, "B2": {"name": "web-1-web"}, "C3": {"name": "web-1-api"}},
    "revoked": {"C3": {"name": "web-1-api", "reason": "key_compromise"}},
    "current": {"web-1-web": {"serial": "B2", "host": "web-1"}, "web-1-api": {"serial": "C3", "host": "web-1"}},
}
NAMES = {"web": "web-1-web", "api": "web-1-api"}
INTACT = {"exists": True, "intact": True, "unrecorded": [], "summary": "intact since 2026-12-06T00:00:00Z: 3 entries, the last at …"}


def inspected(files, served):
    return {"certificates": [{"name": n, "exists": True, "serial": s, "path": f"/etc/mtls/{n}/cert.pem"} for n, s in files.items()],
            "served": [{"label": f"nginx {n}:8443", "service": n, "serial": s, "error": None if s else "ConnectionRefusedError: refused"}
                       for n, s in served.items()]}


def kinds(found):
    return sorted((f["service"], f["kind"]) for f in found)


def test_nothing_when_served_installed_and_issued_agree():
    assert drift.host_findings("web-1", inspected({"web": "B2"}, {"web": "B2"}), NAMES, RECORD) == []


def test_each_kind():
    assert kinds(drift.host_findings("web-1", inspected({"web": "B2"}, {"web": "A1"}), NAMES, RECORD)) == [("web", "file_not_served")]
    assert kinds(drift.host_findings("web-1", inspected({"web": "A1"}, {"web": "A1"}), NAMES, RECORD)) == [("web", "behind_store")]
    assert kinds(drift.host_findings("web-1", inspected({"web": "B2"}, {"web": "FF"}), NAMES, RECORD)) == [
        ("web", "file_not_served"), ("web", "unknown_served")]
    assert kinds(drift.host_findings("web-1", inspected({"api": "C3"}, {"api": "C3"}), NAMES, RECORD)) == [("api", "revoked_served")]
    assert kinds(drift.host_findings("web-1", inspected({"web": "B2"}, {"web": None}), NAMES, RECORD)) == [("web", "not_answering")]


def test_a_finding_says_what_and_how_to_fix_it():
    found, = drift.host_findings("web-1", inspected({"api": "C3"}, {"api": "C3"}), NAMES, RECORD)
    assert found["detail"] == "serial C3 was revoked (key_compromise)" and "mtls.fleet.site" in found["fix"]
    assert drift.counts([found]) == {"revoked_served": 1, "unknown_served": 0, "file_not_served": 0, "behind_store": 0, "not_answering": 0}


def test_the_fleet_table_and_the_ledger_beside_it():
    found = drift.host_findings("web-1", inspected({"web": "B2"}, {"web": "A1"}), NAMES, RECORD)
    report = drift.fleet([("web-1", found)], 1, INTACT)
    assert report["table"][0].split() == ["HOST", "WHERE", "DRIFT", "DETAIL"]
    assert report["table"][-2] == "1 endpoints compared with their files and the CA's record: 1 drift"
    assert report["alert_lines"] == ["web-1 nginx web:8443: serves another certificate than the file installed for it (the service did not "
                                     "reload) (serves A1, /etc/mtls/web/cert.pem holds B2); reload the service (mtls.fleet.rotate does and proves it)"]
    clean = drift.fleet([("web-1", [])], 1, INTACT)
    assert clean["alert_lines"] == [] and clean["table"][-1] == "ledger: " + INTACT["summary"]
    broken = drift.fleet([("web-1", [])], 1, dict(INTACT, intact=False, summary="BROKEN at line 3: …"))
    assert broken["alert_lines"][0].startswith("the CA's issuance ledger: BROKEN at line 3")
    cut = drift.fleet([("web-1", [])], 1, dict(INTACT, unrecorded=["certificate web …"]))
    assert len(cut["alert_lines"]) == 1
