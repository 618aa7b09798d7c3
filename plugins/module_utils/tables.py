# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans and summaries as aligned lines of text. No Ansible imports.

A list of lines is what stays readable in Ansible's default callback (a debug msg that is a list
prints one line per item, where one string would print with escaped newlines).
"""

from __future__ import annotations

import datetime


def render(header, rows):
    """Every column as wide as its widest cell, two spaces apart; the last one is not padded."""
    cells = [[_text(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header) - 1)]
    return ["  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + row[-1:]).rstrip() for row in cells]


def short_serial(serial):
    return serial[:16] + ".." if serial else "-"


def issuance(result):
    """What a certificates run issued, renewed or kept, and why (its ``certificates`` and ``summary``)."""
    rows = [(c["name"], c["status"], c.get("reason") or None, short_serial(c.get("serial")) if c.get("serial") else "(check mode)",
             c.get("not_after")) for c in result["certificates"]]
    summary = result["summary"]
    return render(("CERTIFICATE", "STATUS", "REASON", "SERIAL", "NOT AFTER"), rows) + [
        "%d issued, %d renewed, %d unchanged" % (summary["issued"], summary["renewed"], summary["unchanged"])]


def fleet(records_by_host):
    """What each host serves after its transaction: ``[(host, host_transaction result)]``. One line
    per endpoint proved; a host without endpoints gets one per service installed. Hosts without a
    result (check mode before a first rollout) are left out."""
    rows = []
    for host, record in records_by_host:
        result = record.get("outcome") or "-"
        probes = [probe for probe in record.get("probes") or [] if probe.get("serial")]
        rows += [(host, "%s/%s" % (probe["kind"], probe["service"]), probe["port"], short_serial(probe["serial"]), probe["not_after"],
                  "%s, %s %s" % (result, answer(probe), probe["tls_version"])) for probe in probes]
        if not probes:
            rows += [(host, "files/%s" % service["name"], None, short_serial(service.get("serial")), service.get("not_after"), result)
                     for service in record.get("services") or []]
    return render(("HOST", "ENDPOINT", "PORT", "SERIAL", "NOT AFTER", "RESULT"), rows)


def answer(probe):
    """How an endpoint answered the probe: HTTP 200, or PostgreSQL's login ready."""
    return "login %s" % probe["status"] if probe.get("kind") == "postgresql" else "HTTP %s" % probe["status"]


def rotation_plan(hosts, issued):
    """What a rotation will do with each certificate: ``hosts`` is ``[(host, forced, inspected
    certificates, requests)]`` (the host's copy, as certificate_info judged it, and the names the CA
    store knows it by, in the same order); ``issued`` is the issuance result (the store's copy). Both
    copies are judged: the store may hold a certificate the host never got (its rollout failed, or
    the host was lost)."""
    store = {cert["name"]: cert for cert in issued["certificates"]}
    rows = []
    for host, forced, inspected, requests in hosts:
        for cert, request in zip(inspected, requests):
            rows.append((host, cert["name"], (cert.get("serial") or "-")[:16], cert.get("days_left"), cert.get("reason") or "ok",
                         planned_action(forced, cert, store[request["name"]])))
    return render(("HOST", "SERVICE", "SERIAL NOW", "DAYS LEFT", "VERDICT", "ACTION"), rows)


def planned_action(forced, installed, stored):
    if forced:
        return "renew (forced)"
    if stored["status"] != "unchanged":
        return "renew: " + stored["detail"]
    if installed.get("renew") or stored["serial"] != installed.get("serial"):
        return "install %s from the CA store" % stored["serial"][:16]
    return "keep"


def rotation_summary(hosts):
    """What each host serves after a rotation: ``hosts`` is ``[(host, certificates before (as
    inspected, or the services when the host was never read), generation served now, outcome)]``."""
    rows = []
    for host, before, serving, outcome in hosts:
        now = {cert["name"]: cert for cert in serving}
        for cert in before:
            after = now.get(cert["name"], {})
            unknown = "?" if outcome.startswith("lost") else cert.get("serial")
            rows.append((host, cert["name"], (cert.get("serial") or "-")[:16], "->", (after.get("serial") or unknown or "-")[:16],
                         after.get("not_after") or cert.get("not_after"), outcome))
    return render(("HOST", "SERVICE", "OLD SERIAL", "", "NOW SERVING", "NOT AFTER", "RESULT"), rows)


def revocation(crl, check_mode):
    """What a crl run revoked (its ``revoked`` entries), then the CRLs' totals."""
    rows = [(entry.get("name"), entry["serial"], entry["reason"], entry["status"]) for entry in crl["revoked"]]
    return render(("CERTIFICATE", "SERIAL", "REASON", "STATUS"), rows) + [
        "%sCRLs: %d revoked in all, next update %s" % ("(check mode: nothing recorded) " if check_mode else "",
                                                       sum(c["revoked"] for c in crl["crls"]), crl.get("next_update") or "(check mode)")]


def revocation_timing(records_by_host, missed, replaced_next_update, now):
    """How long each endpoint took to refuse each revoked host's certificate: ``records_by_host`` is
    ``[(revoked host, mtls.fleet.revocation_check's endpoints, or None when it was not reached)]``;
    ``missed`` the hosts that did not get the new CRLs; ``replaced_next_update`` when the CRLs they
    still hold run out (ISO 8601, or None)."""
    rows, measured = [], []
    for host, records in records_by_host:
        if records is None:
            rows.append((host, "(not reached: its refusal could not be timed from it)", None))
            continue
        for record in records:
            rows.append((host, "%s %s" % (record["host"], record["label"]), "%.2f s" % record["seconds"] if record["refused"] else "still accepted"))
            if record["refused"]:
                measured.append((record["seconds"], "%s %s" % (record["host"], record["label"])))
    lines = render(("REVOKED HOST", "ENDPOINT", "REFUSED AFTER"), rows) if rows else [
        "No revoked certificate belongs to an inventory host (revoked by serial or name), so no refusal was timed"]
    if measured:
        slowest = max(measured)
        lines.append("%d endpoint refusals timed from the revocation's start; the fleet's slowest: %.2f s (%s)" % (len(measured), slowest[0], slowest[1]))
    for host in missed:
        lines.append("%s did not get the new CRLs (unreachable or failed): it accepts the revoked certificates until it does%s" % (
            host, _until(replaced_next_update, now)))
    return lines


def _until(next_update, now):
    if not next_update:
        return ""
    left = datetime.datetime.strptime(next_update, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc) - now
    return ", and refuses every client after its CRLs' next update, %s (in %.1f days): run mtls.fleet.revoke again once it is back" % (
        next_update, left.total_seconds() / 86400)


def trust(probes_by_host):
    """Which CA's clients each endpoint accepts: ``[(host, mtls.fleet.trust_check's probes)]``,
    each probe with its endpoint, the identity (old or new) and the ``client`` outcome."""
    rows = []
    for host, probes in probes_by_host:
        clients = {}
        for probe in probes:
            clients.setdefault(probe["endpoint"], (probe, {}))[1][probe["identity"]] = probe.get("client")
        rows += [(host, "%s/%s" % (first["kind"], first["service"]), first["port"], found.get("old"), found.get("new"))
                 for first, found in clients.values()]
    return render(("HOST", "ENDPOINT", "PORT", "OLD-CA CLIENT", "NEW-CA CLIENT"), rows)


def _text(value):
    return "-" if value is None else str(value)
