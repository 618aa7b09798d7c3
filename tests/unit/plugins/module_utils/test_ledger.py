"""The issuance ledger: every issuance, revocation and CA change is a signed, hash-chained line;
a changed, removed, foreign or cut line is found; a retired CA's entries still verify; backups
carry it. Real keys, real files, a fixed clock."""

import base64
import json
import os
import shutil

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mtls.fleet.plugins.module_utils import authority, backup, bulk_issuance, ledger, pki, revocation, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW, make_issuer

SPEC = authority.CASpec(intermediate=True)


def ca_with_history(tmp_path):
    """A CA made, two certificates issued through bulk issuance, one renewed, one revoked."""
    path = str(tmp_path / "ca")
    created = authority.ensure_ca(path, SPEC, CAKeys(), NOW)
    ledger.record_ca_created(path, created.created, CAKeys(), NOW)
    issue(path, ["web", "api"], NOW)
    issue(path, ["web"], NOW + DAY, force=True)
    revoked = revocation.revoke(path, [revocation.RevokeRequest.parse({"name": "api", "reason": "key_compromise"}, 0)], CAKeys(), NOW + 2 * DAY)
    ledger.record_revocations(path, revoked, CAKeys(), NOW + 2 * DAY)
    return path


def issue(path, names, now, force=False):
    params = ArgumentSpecValidator(bulk_issuance.ARGUMENT_SPEC).validate(
        {"ca_path": path, "force": force, "certificates": [{"name": n, "subject_alt_name": [f"DNS:{n}.example.org"], "host": f"{n}-1"} for n in names]}
    ).validated_parameters
    return bulk_issuance.run(params, now)


def lines(path):
    return open(ledger.path_of(path), "rb").read().splitlines()


def write_lines(path, new_lines):
    with open(ledger.path_of(path), "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in new_lines))


def test_every_change_is_one_signed_line_and_the_chain_verifies(tmp_path):
    path = ca_with_history(tmp_path)
    entries = [json.loads(line) for line in lines(path)]
    assert [e["event"] for e in entries] == ["started", "ca_created", "issued", "issued", "revoked"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert [c["status"] for c in entries[3]["certificates"]] == ["renewed"]
    assert entries[2]["certificates"][0]["host"] == "web-1"
    assert entries[4]["revoked"][0]["reason"] == "key_compromise"
    assert b"PRIVATE KEY" not in open(ledger.path_of(path), "rb").read()
    assert oct(os.stat(ledger.path_of(path)).st_mode & 0o777) == "0o644"

    verdict = ledger.verify(path)
    assert verdict.intact and not verdict.unrecorded and verdict.entries == 5
    assert verdict.since == "2026-01-01T12:00:00Z" and verdict.last == "2026-01-03T12:00:00Z"
    assert verdict.summary() == "intact since 2026-01-01T12:00:00Z: 5 entries, the last at 2026-01-03T12:00:00Z"
    web = pki.load_certificates(open(os.path.join(path, "issued", "web", "cert.pem"), "rb").read(), "web")[0]
    assert verdict.issued[pki.serial_text(web)]["status"] == "renewed"
    assert len(verdict.issued) == 3 and len(verdict.revoked) == 1  # both of web's serials, api's


def test_an_idempotent_run_and_check_mode_write_nothing(tmp_path):
    path = ca_with_history(tmp_path)
    before = lines(path)
    issue(path, ["web"], NOW + 3 * DAY)
    params = ArgumentSpecValidator(bulk_issuance.ARGUMENT_SPEC).validate(
        {"ca_path": path, "force": True, "certificates": [{"name": "web", "subject_alt_name": ["DNS:web.example.org"]}]}).validated_parameters
    bulk_issuance.run(params, NOW + 3 * DAY, check_mode=True)
    again = revocation.revoke(path, [revocation.RevokeRequest.parse({"name": "api"}, 0)], CAKeys(), NOW + 3 * DAY)
    ledger.record_revocations(path, again, CAKeys(), NOW + 3 * DAY)  # already revoked
    assert lines(path) == before


def test_a_changed_line_is_found(tmp_path):
    path = ca_with_history(tmp_path)
    changed = lines(path)
    changed[2] = changed[2].replace(b'"host":"web-1"', b'"host":"evil-1"')
    write_lines(path, changed)
    verdict = ledger.verify(path)
    assert not verdict.intact and verdict.broken_at == 3
    assert "signature does not verify with 'mtls.fleet intermediate CA': the line was changed" in verdict.problem
    assert verdict.summary().startswith("BROKEN at line 3: ") and "lines 1-2 verify (to 2026-01-01T12:00:00Z)" in verdict.summary()


def test_a_removed_or_reordered_line_is_found(tmp_path):
    path = ca_with_history(tmp_path)
    original = lines(path)
    write_lines(path, original[:2] + original[3:])
    verdict = ledger.verify(path)
    assert (verdict.broken_at, verdict.problem) == (3, "entry 4 stands at line 3: a line before it was removed or added")
    write_lines(path, original[:3] + [original[4], original[3]])
    assert ledger.verify(path).broken_at == 4


def test_a_line_re_signed_with_a_key_that_is_not_the_cas_is_found(tmp_path):
    """Whoever rewrites a line and its chain still lacks the CA's key."""
    path = ca_with_history(tmp_path)
    forged = lines(path)
    stranger = make_issuer()
    entry = json.loads(forged[2])
    entry["certificates"][0]["host"] = "evil-1"
    entry["signer"] = pki.fingerprint(stranger.cert)
    entry["cas"] = [pki.cert_to_pem(stranger.cert).decode()]  # vouching for itself does not help
    del entry["signature"]
    entry["signature"] = base64.b64encode(pki.sign_data(stranger.key, ledger._canonical(entry))).decode()
    forged[2] = ledger._canonical(entry)
    write_lines(path, forged[:3])
    verdict = ledger.verify(path)
    assert verdict.broken_at == 3 and verdict.problem.startswith("signed by a key that is not this CA's")


def test_lines_cut_from_the_end_show_as_store_records_the_ledger_does_not_name(tmp_path):
    path = ca_with_history(tmp_path)
    write_lines(path, lines(path)[:3])
    verdict = ledger.verify(path)
    assert verdict.intact and verdict.entries == 3
    assert any("certificate web" in u and "is in the store but not in the ledger" in u for u in verdict.unrecorded)
    assert any("the revocation of serial" in u for u in verdict.unrecorded)
    assert "of the store's records are missing from it" in verdict.summary()


def test_a_torn_last_line_is_found(tmp_path):
    path = ca_with_history(tmp_path)
    content = open(ledger.path_of(path), "rb").read()
    with open(ledger.path_of(path), "wb") as handle:
        handle.write(content[:-40])
    verdict = ledger.verify(path)
    assert verdict.broken_at == 5 and "incomplete" in verdict.problem and verdict.entries == 4


def test_a_directory_that_issued_before_the_ledger_starts_it_with_what_it_holds(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, SPEC, CAKeys(), NOW)
    requests = authority.parse_requests([{"name": "old", "subject_alt_name": ["DNS:old"], "host": "old-1"}], {})
    authority.issue(os.path.join(path, "issued"), requests, authority.load_issuer(path, CAKeys()), pki.Policy(), NOW)  # as 0.4.0 did
    assert not ledger.verify(path).exists
    assert ledger.verify(path).summary().startswith("no ledger yet")
    issue(path, ["web"], NOW + DAY)
    started, issued = (json.loads(line) for line in lines(path))
    assert started["event"] == "started" and [c["name"] for c in started["certificates"]] == ["old"]
    assert started["certificates"][0]["host"] == "old-1" and issued["event"] == "issued"
    verdict = ledger.verify(path)
    assert verdict.intact and not verdict.unrecorded and verdict.entries == 2


def test_a_root_rollover_keeps_the_retired_cas_entries_verifiable(tmp_path):
    path = ca_with_history(tmp_path)
    for phase in rollover.PHASES:
        rollover.begin(path, phase, rollover.Kind.ROOT if phase == "trust" else None, SPEC, CAKeys(), NOW + 3 * DAY)
        rollover.verified(path, phase, CAKeys(), NOW + 3 * DAY)
    issue(path, ["web"], NOW + 4 * DAY, force=True)
    entries = [json.loads(line) for line in lines(path)]
    assert [(e.get("phase"), e.get("state")) for e in entries if e["event"] == "rollover"] == [
        ("trust", "begun"), ("trust", "verified"), ("reissue", "begun"), ("reissue", "verified"), ("retire", "begun"), ("retire", "verified")]
    assert len({e["signer"] for e in entries}) >= 2  # the old intermediate signed the first ones, the new one the last
    assert not any(pki.fingerprint(c) == entries[2]["signer"] for c in ledger.current_cas(path))  # its CA is gone from the directory
    verdict = ledger.verify(path)
    assert verdict.intact and verdict.entries == len(entries)


def test_backups_carry_the_ledger(tmp_path):
    path = ca_with_history(tmp_path)
    archive = str(tmp_path / "ca.enc")
    backup.backup(path, archive, "correct horse battery staple")
    before = open(ledger.path_of(path), "rb").read()
    shutil.rmtree(path)
    backup.restore(path, archive, "correct horse battery staple")
    assert open(ledger.path_of(path), "rb").read() == before
    assert ledger.verify(path).intact


def test_every_key_type_signs_and_verifies():
    for key_type in pki.KeyType:
        issuer = make_issuer(key_type=key_type)
        signature = pki.sign_data(issuer.key, b"entry")
        assert pki.verify_data(issuer.cert, signature, b"entry")
        assert not pki.verify_data(issuer.cert, signature, b"entrY")


def test_the_record_report_compares_with(tmp_path):
    path = ca_with_history(tmp_path)
    record = ledger.store_record(path)
    web = pki.load_certificates(open(os.path.join(path, "issued", "web", "cert.pem"), "rb").read(), "web")[0]
    api = pki.load_certificates(open(os.path.join(path, "issued", "api", "cert.pem"), "rb").read(), "api")[0]
    assert record["current"] == {"api": {"serial": pki.serial_text(api), "host": "api-1"}, "web": {"serial": pki.serial_text(web), "host": "web-1"}}
    assert record["revoked"] == {pki.serial_text(api): {"name": "api", "reason": "key_compromise"}}
    assert pki.serial_text(web) in record["issued"] and len(record["issued"]) == 3
    assert record["ledger"]["intact"] and record["ledger"]["summary"].startswith("intact since")
