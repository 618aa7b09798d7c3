# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's expiry report, from what certificate_info read on each host. No Ansible imports."""

from __future__ import annotations

from ansible_collections.mtls.fleet.plugins.module_utils import tables

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
