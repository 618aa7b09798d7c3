"""The fleet's expiry report: soonest expiry first, what needs attention, and why."""

from ansible_collections.mtls.fleet.plugins.module_utils import report


def inspected(certificates, crl_days=20):
    crl = {"exists": True, "days_left": crl_days, "next_update": "2026-12-23T00:00:00Z", "issuers": ["root", "mtls.fleet intermediate"],
           "path": "/etc/mtls/crl.pem"}
    return {"certificates": certificates, "crl": crl}


def test_rows_come_soonest_expiry_first_and_alerts_say_why():
    found = report.expiry([
        ("web-1", inspected([{"name": "web", "serial": "AA", "not_after": "2027-03-01", "days_left": 88, "issuer": "CN=i", "reason": None}])),
        ("web-2", dict(inspected([{"name": "web", "reason": "missing", "detail": "/etc/mtls/web/cert.pem is missing"}]),
                       crl={"exists": False, "path": "/etc/mtls/crl.pem"})),
    ], threshold_days=30)
    assert [(r["host"], r["service"], r["days_left"], r["verdict"]) for r in found["rows"]] == [
        ("web-2", "web", -99999, "missing"), ("web-2", "(CRLs)", -99999, "missing"),
        ("web-1", "(CRLs)", 20, "ok"), ("web-1", "web", 88, "ok")]
    assert found["alert_lines"] == ["web-2/web: missing, /etc/mtls/web/cert.pem is missing",
                                    "web-2/(CRLs): missing, /etc/mtls/crl.pem is missing; run the rollout",
                                    "web-1/(CRLs): ok, next update 2026-12-23T00:00:00Z"]
    assert found["table"][0].split() == ["HOST", "SERVICE", "SERIAL", "NOT", "AFTER", "DAYS", "LEFT", "ISSUER", "VERDICT"]
    assert found["table"][1].split() == ["web-2", "web", "-", "-", "-", "-", "missing"]
    assert found["table"][-1] == "2 certificates and 2 CRL files, 3 need attention (threshold 30 days)"


def test_nothing_needs_attention_within_the_threshold():
    found = report.expiry([("web-1", inspected([{"name": "web", "serial": "AA", "days_left": 88, "reason": None}], crl_days=25))], 14)
    assert found["alerts"] == [] and found["table"][-1] == "1 certificates and 1 CRL files, 0 need attention (threshold 14 days)"
