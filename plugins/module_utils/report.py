# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's expiry report, from what certificate_info read on each host, and when each host last
rotated, from the CA's rotation record. No Ansible imports."""

from __future__ import annotations

from ansible_collections.mtls.fleet.plugins.module_utils import rotation_record, tables

BROKEN = ("missing", "corrupt", "key_mismatch", "issuer_changed", "expired")
NEVER = -99999  # sorts first: what cannot be read needs attention before anything that expires


def expiry(inspected_by_host, threshold_days):
    """``inspected_by_host``: ``[(host, certificate_info result)]``. Returns the rows (soonest
    expiry first; each certificate, and each host's CRL file), the rows that need attention (expiry
    within the threshold, or a broken verdict), one line per alert, and the table's lines."""
    rows = []
    for host, inspected in inspected_by_host:
        for cert in inspected["certificates"]:
            rows.append({"host": host, "service": cert["name"], "serial": cert.get("serial"), "not_after": cert.get("not_after"),
                         "days_left": NEVER if cert.get("days_left") is None else cert["days_left"], "issuer": cert.get("issuer"),
                         "verdict": cert.get("reason") or "ok", "detail": cert.get("detail")})
        crl = inspected["crl"]
        rows.append({"host": host, "service": "(CRLs)", "serial": None, "not_after": crl.get("next_update"),
                     "days_left": crl["days_left"] if crl["exists"] else NEVER, "issuer": (crl.get("issuers") or [None])[-1],
                     "verdict": "ok" if crl["exists"] else "missing",
                     "detail": "next update %s" % crl["next_update"] if crl["exists"] else "%s is missing; run the rollout" % crl["path"]})
    rows.sort(key=lambda row: row["days_left"])
    alerts = [row for row in rows if row["days_left"] < threshold_days or row["verdict"] in BROKEN]
    crls = sum(1 for row in rows if row["service"] == "(CRLs)")
    table = tables.render(
        ("HOST", "SERVICE", "SERIAL", "NOT AFTER", "DAYS LEFT", "ISSUER", "VERDICT"),
        [(row["host"], row["service"], (row["serial"] or "-")[:16], row["not_after"], row["days_left"] if row["days_left"] > NEVER else None,
          (row["issuer"] or "-")[:31], row["verdict"]) for row in rows])
    table.append("%d certificates and %d CRL files, %d need attention (threshold %d days)" % (len(rows) - crls, crls, len(alerts), threshold_days))
    return {"rows": rows, "alerts": alerts, "table": table,
            "alert_lines": ["%s/%s: %s, %s" % (row["host"], row["service"], row["verdict"], row["detail"]) for row in alerts]}


def rotations(hosts, record, max_age_days, now):
    """When each host last rotated, from the rotation record ({host: {last_run, last_outcome,
    last_success}}). A host whose last successful rotation is older than max_age_days (or that has
    none) needs attention; max_age_days 0 judges none. Returns rows, alerts, alert lines, table."""
    rows = []
    for host in hosts:
        entry = record.get(host) or {}
        rows.append({"host": host, "last_run": entry.get("last_run"), "last_outcome": entry.get("last_outcome"),
                     "last_success": entry.get("last_success"), "days_since_success": rotation_record.days_since(entry.get("last_success"), now)})
    late = [row for row in rows if max_age_days and (row["days_since_success"] is None or row["days_since_success"] > max_age_days)]
    table = tables.render(("HOST", "LAST ROTATION RUN", "OUTCOME", "LAST SUCCESS", "DAYS SINCE"),
                          [(row["host"], row["last_run"] or "never", row["last_outcome"] or "-", row["last_success"] or "never",
                            row["days_since_success"]) for row in rows])
    judged = f"older than {max_age_days:g} days" if max_age_days else "not judged: set mtls_report_rotation_max_age_days"
    table.append("%d hosts, %d without a successful rotation for too long (%s)" % (len(rows), len(late), judged))
    return {"rows": rows, "alerts": late, "table": table,
            "alert_lines": ["%s/(rotation): last successful rotation %s (last run %s: %s)"
                            % (row["host"], row["last_success"] or "never", row["last_run"] or "never", row["last_outcome"] or "-")
                            for row in late]}
