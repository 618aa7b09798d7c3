"""Revocations recorded in the CA directory, and the CRLs published from them (fixed clock)."""

import json
import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, certinfo, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW

LIFETIME, RENEW = 30 * DAY, pki.RenewBefore.parse("20d")


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), NOW)
    return path


def issue(ca, names, now=NOW, force=False):
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}"]} for n in names], {})
    outcomes = authority.issue(os.path.join(ca, authority.ISSUED), requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), now,
                               force=force, revoked=revocation.revoked_serials(ca))
    return {o.name: o for o in outcomes}


def crls(ca):
    return pki.load_crls(open(os.path.join(ca, revocation.CRL_FILE), "rb").read(), "crl.pem")


def by_name(name, reason=pki.RevocationReason.KEY_COMPROMISE):
    return revocation.RevokeRequest(name=name, reason=reason)


def test_first_publication_has_one_empty_crl_per_ca_and_is_then_idempotent(ca):
    first = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    assert first.changed and first.reason == "no CRL yet"
    assert [c["issuer"] for c in first.crls] == ["CN=mtls.fleet root CA", "CN=mtls.fleet intermediate CA"]
    assert all(c["revoked"] == 0 for c in first.crls)
    again = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW + DAY)
    assert not again.changed and again.pem == first.pem
    assert os.stat(os.path.join(ca, revocation.CRL_FILE)).st_mode & 0o777 == 0o644


def test_crls_are_resigned_inside_renew_before_and_not_earlier(ca):
    revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    assert not revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW + 9 * DAY).changed
    late = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW + 11 * DAY)
    assert late.changed and "inside crl_renew_before" in late.reason
    assert all(pki.crl_next_update(c) == NOW + 41 * DAY for c in crls(ca))


def test_revoking_by_name_covers_the_current_and_the_replaced_certificate(ca):
    first = issue(ca, ["web-1-web", "web-2-web"])["web-1-web"].after
    second = issue(ca, ["web-1-web"], now=NOW + DAY, force=True)["web-1-web"].after
    revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW + DAY)
    revoked = revocation.revoke(ca, [by_name("web-1-web")], CAKeys(), NOW + 2 * DAY)
    assert sorted(r["serial"] for r in revoked) == sorted([pki.serial_text(first), pki.serial_text(second)])
    assert {r["status"] for r in revoked} == {"revoked"}
    result = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW + 2 * DAY)
    assert result.reason == "revocations changed"
    intermediate_crl = crls(ca)[1]
    assert pki.crl_serials(intermediate_crl) == {first.serial_number, second.serial_number}
    entry = intermediate_crl.get_revoked_certificate_by_serial_number(second.serial_number)
    assert entry.extensions[0].value.reason.name == "key_compromise"
    again = revocation.revoke(ca, [by_name("web-1-web")], CAKeys(), NOW + 3 * DAY)
    assert {r["status"] for r in again} == {"already revoked"}


def test_a_revoked_certificate_is_reissued_by_the_next_run(ca):
    before = issue(ca, ["web-1-web", "web-2-web"])
    revocation.revoke(ca, [by_name("web-1-web")], CAKeys(), NOW)
    after = issue(ca, ["web-1-web", "web-2-web"], now=NOW + DAY)
    assert (after["web-1-web"].status, after["web-1-web"].reason) == ("renewed", "revoked")
    assert after["web-1-web"].after.serial_number != before["web-1-web"].after.serial_number
    assert after["web-2-web"].status == "unchanged"


def test_revoking_by_serial_and_dropping_expired_entries(ca):
    revocation.revoke(ca, [revocation.RevokeRequest(serial="0a:bc:de")], CAKeys(), NOW)
    assert json.load(open(os.path.join(ca, revocation.REVOKED_FILE)))[0]["serial"] == "ABCDE"
    leaf = issue(ca, ["short"])["short"].after
    revocation.revoke(ca, [by_name("short")], CAKeys(), NOW)
    revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    assert pki.crl_serials(crls(ca)[1]) == {0xABCDE, leaf.serial_number}
    expired = pki.not_after(leaf) + DAY
    result = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, expired)
    assert result.changed and pki.crl_serials(crls(ca)[1]) == {0xABCDE}  # a serial without expiry stays


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"name": "a", "serial": "01"}, "either name"),
        ({}, "either name"),
        ({"serial": "xyz"}, "not a certificate serial in hexadecimal"),
        ({"serial": "-1"}, "not a certificate serial"),
        ({"serial": "0"}, "not a certificate serial"),
        ({"name": "a", "reason": "bored"}, "unknown revocation reason"),
        ({"name": "../../etc"}, "name '../../etc' is no certificate name"),
        ({"name": "/etc/passwd"}, "is no certificate name"),
        ({"name": ".."}, "is no certificate name"),
    ],
)
def test_bad_requests_name_the_entry_and_the_fix(raw, message):
    with pytest.raises(pki.PKIError, match=message) as exc:
        revocation.RevokeRequest.parse(raw, 3)
    assert "revoke[3]" in str(exc.value)


def test_unknown_name_and_ca_serial_are_refused_before_anything_is_written(ca):
    with pytest.raises(pki.PKIError, match="no certificate named 'nope'.*<inventory host>-<service>"):
        revocation.revoke(ca, [by_name("nope")], CAKeys(), NOW)
    root = authority.read_ca_pair(ca, authority.ROOT_CERT, authority.ROOT_KEY, CAKeys())[0]
    with pytest.raises(pki.PKIError, match="is the CA"):
        revocation.revoke(ca, [revocation.RevokeRequest(serial=pki.serial_text(root))], CAKeys(), NOW)
    assert not os.path.exists(os.path.join(ca, revocation.REVOKED_FILE))


def test_check_mode_reports_and_writes_nothing(ca):
    issue(ca, ["web-1-web"])
    result = revocation.revoke(ca, [by_name("web-1-web")], CAKeys(), NOW, check_mode=True)
    assert result[0]["status"] == "revoked"
    crl = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW, check_mode=True)
    assert crl.changed and crl.pem
    assert not os.path.exists(os.path.join(ca, revocation.REVOKED_FILE))
    assert not os.path.exists(os.path.join(ca, revocation.CRL_FILE))


def test_a_corrupt_crl_file_is_replaced(ca):
    revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    with open(os.path.join(ca, revocation.CRL_FILE), "wb") as handle:
        handle.write(b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    result = revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    assert result.changed and "corrupt" in result.reason
    assert len(crls(ca)) == 2


def test_a_host_reports_its_crls_next_update(ca, tmp_path):
    revocation.ensure_crls(ca, CAKeys(), LIFETIME, RENEW, NOW)
    facts = certinfo.crl_facts(os.path.join(ca, revocation.CRL_FILE), NOW + 10 * DAY)
    assert facts["exists"] and facts["days_left"] == 20.0
    assert facts["next_update_timestamp"] == int((NOW + LIFETIME).timestamp())
    assert facts["issuers"] == ["CN=mtls.fleet root CA", "CN=mtls.fleet intermediate CA"]
    assert not certinfo.crl_facts(str(tmp_path / "none.pem"), NOW)["exists"]
    (tmp_path / "empty.pem").write_bytes(b"")
    with pytest.raises(pki.PKIError, match="holds no CRL"):
        certinfo.crl_facts(str(tmp_path / "empty.pem"), NOW)


def test_a_routine_run_keeps_a_revoked_certificate_and_says_so(ca):
    before = issue(ca, ["web-1-web"])["web-1-web"].after
    revocation.revoke(ca, [by_name("web-1-web")], CAKeys(), NOW)
    requests = authority.parse_requests([{"name": "web-1-web", "subject_alt_name": ["DNS:web-1-web"]}], {})
    kept = authority.issue(os.path.join(ca, authority.ISSUED), requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW + DAY,
                           force=True, revoked=revocation.revoked_serials(ca), renew_revoked=False)[0]
    assert (kept.status, kept.reason) == ("unchanged", "revoked")
    assert "kept until mtls.fleet.site re-issues it" in kept.detail
    assert kept.after.serial_number == before.serial_number


def test_a_name_the_store_keeps_for_another_host_is_not_revoked_for_this_one(ca):
    from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests
    store = os.path.join(ca, authority.ISSUED)
    raw = certificate_requests([{"name": "c"}], "a-b", "example.org")  # the store records host a-b for a-b-c
    authority.issue(store, authority.parse_requests(raw, {}), authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW)
    with pytest.raises(pki.PKIError, match="certificate 'a-b-c' is host a-b's in the CA store, not host a's; nothing was revoked"):
        revocation.revoke(ca, [revocation.RevokeRequest.parse({"name": "a-b-c", "host": "a"}, 0)], CAKeys(), NOW)
    assert revocation.read_revocations(ca) == []
    done = revocation.revoke(ca, [revocation.RevokeRequest.parse({"name": "a-b-c", "host": "a-b"}, 0)], CAKeys(), NOW)
    assert [entry["status"] for entry in done] == ["revoked"]


def test_the_diff_names_each_certificate_revoked_now_and_why_the_crls_were_resigned():
    revoked = [{"name": "web-1-web", "serial": "1A", "reason": "key_compromise", "status": "revoked"},
               {"name": "web-1-api", "serial": "2B", "reason": "unspecified", "status": "already revoked"},
               {"name": None, "serial": "3C", "reason": "superseded", "status": "revoked"}]
    assert revocation.diff_text(revoked, "revocations changed") == (
        "revoked web-1-web 1A (key_compromise)\nrevoked serial 3C (superseded)\nCRLs re-signed: revocations changed\n")
    assert revocation.diff_text([], None) == ""
