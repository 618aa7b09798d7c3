# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift: what each endpoint serves, the file installed for it and the CA's record, compared.

A rotation proves what it installed once; drift is what became untrue since: a service that
never reloaded, a certificate put in place by hand, a revoked identity still served, a host left
behind by a rotation that rolled back. No Ansible imports.
"""

from __future__ import annotations

from . import tables

# kind -> what it means, worded as the end of "<host> <endpoint> ..."
KINDS = {
    "revoked_served": "serves a certificate the CA revoked",
    "unknown_served": "serves a certificate the CA's ledger does not name (not issued by this CA, or issued without mtls.fleet)",
    "file_not_served": "serves another certificate than the file installed for it (the service did not reload)",
    "behind_store": "holds an older certificate than the one the CA issued last for it (a rotation did not finish)",
    "not_answering": "did not answer a TLS handshake, so what it serves is unknown",
}
FIXES = {
    "revoked_served": "reload the service; if it keeps serving it, run mtls.fleet.site to install a new certificate",
    "unknown_served": "find who put it there; mtls.fleet.rotate -e mtls_rotate_force=HOST installs one the CA issued",
    "file_not_served": "reload the service (mtls.fleet.rotate does and proves it)",
    "behind_store": "run mtls.fleet.rotate -e mtls_rotate_force=HOST",
    "not_answering": "start the service, or check mtls_nginx_servers / mtls_app_endpoints / mtls_haproxy_frontends / mtls_postgresql_port",
}


def host_findings(host: str, inspected: dict, issued_names: dict, record: dict) -> list:
    """Every drift of one host.

    inspected: certificate_info's result with ``served``; issued_names: {service: the certificate's
    name in the CA store}; record: ledger_info's result (issued, revoked, current).
    """
    files = {cert["name"]: cert for cert in inspected.get("certificates", [])}
    found = []
    for endpoint in inspected.get("served", []):
        where = dict(host=host, endpoint=endpoint["label"], service=endpoint["service"], served=endpoint.get("serial"))
        serial = endpoint.get("serial")
        if serial is None:
            found.append(_finding(where, "not_answering", endpoint.get("error") or "no answer"))
            continue
        if serial in record["revoked"]:
            found.append(_finding(where, "revoked_served", f"serial {serial} was revoked ({record['revoked'][serial].get('reason')})"))
        elif serial not in record["issued"]:
            found.append(_finding(where, "unknown_served", f"serial {serial} is not in the CA's ledger"))
        installed = files.get(endpoint["service"]) or {}
        if installed.get("exists") and installed.get("serial") != serial:
            found.append(_finding(where, "file_not_served", f"serves {serial}, {installed.get('path')} holds {installed.get('serial')}"))
    for service, cert in files.items():
        latest = record["current"].get(issued_names.get(service, ""))
        if cert.get("exists") and latest and latest["serial"] != cert.get("serial"):
            where = dict(host=host, endpoint=f"file {service}", service=service, served=None)
            found.append(_finding(where, "behind_store", f"{cert.get('path')} holds {cert.get('serial')}, the CA issued {latest['serial']} last"))
    return found


def _finding(where, kind, detail) -> dict:
    return dict(where, kind=kind, detail=detail, fix=FIXES[kind])


def counts(findings) -> dict:
    """{kind: how many}, every kind present (a metric at 0 lets its alert resolve)."""
    return {kind: sum(1 for f in findings if f["kind"] == kind) for kind in KINDS}


def fleet(findings_by_host, endpoints_checked: int, ledger: dict) -> dict:
    """The fleet's drift table, alert lines, and the ledger's verdict beside it."""
    findings = [finding for _host, host_findings_ in findings_by_host for finding in host_findings_]
    table = tables.render(("HOST", "WHERE", "DRIFT", "DETAIL"),
                          [(f["host"], f["endpoint"], f["kind"], f["detail"]) for f in findings]) if findings else []
    table.append("%d endpoints compared with their files and the CA's record: %d drift%s" % (
        endpoints_checked, len(findings), "" if findings else " (every endpoint serves the file installed for it, as the CA issued it)"))
    table.append("ledger: %s" % ledger["summary"])
    alert_lines = ["%s %s: %s (%s); %s" % (f["host"], f["endpoint"], KINDS[f["kind"]], f["detail"], f["fix"]) for f in findings]
    if ledger["exists"] and (not ledger["intact"] or ledger["unrecorded"]):
        alert_lines.append("the CA's issuance ledger: %s; restore ledger.jsonl from the CA backup (mtls.fleet.ca_restore) "
                           "and find who changed it" % ledger["summary"])
    return {"findings": findings, "counts": counts(findings), "table": table, "alert_lines": alert_lines}
