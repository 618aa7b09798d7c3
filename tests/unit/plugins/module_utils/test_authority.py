"""The CA directory and bulk issuance: idempotence, reasons, CSR mode, bad input changes nothing."""

import os
import stat

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW


def snapshot(path):
    return {os.path.join(top, f): open(os.path.join(top, f), "rb").read() for top, dirs, files in os.walk(path) for f in files}


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys("pass"), NOW)
    return path


def requests(*names, **fields):
    raw = [{"name": n, "subject_alt_name": [f"DNS:{n}.example.com"], **fields} for n in names]
    return authority.parse_requests(raw, {})


def run(ca, reqs, now=NOW, **kw):
    issuer = authority.load_issuer(ca, CAKeys("pass"))
    return authority.issue(os.path.join(ca, "issued"), reqs, issuer, kw.pop("policy", pki.Policy()), now, **kw)


def test_ensure_ca_creates_once_with_private_modes(tmp_path):
    path = str(tmp_path / "ca")
    first = authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys("pass"), NOW)
    assert first.changed and first.created == ["root", "intermediate"]
    assert mode(path) == 0o700
    assert mode(os.path.join(path, "root-ca-key.pem")) == 0o600
    assert mode(os.path.join(path, "ca-bundle.pem")) == 0o644
    assert b"ENCRYPTED PRIVATE KEY" in open(os.path.join(path, "intermediate-ca-key.pem"), "rb").read()
    before = snapshot(path)
    second = authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys("pass"), NOW + DAY)
    assert not second.changed and snapshot(path) == before


def test_ensure_ca_check_mode_writes_nothing(tmp_path):
    result = authority.ensure_ca(str(tmp_path / "ca"), authority.CASpec(), CAKeys(), NOW, check_mode=True)
    assert result.changed and not (tmp_path / "ca").exists()


def test_ensure_ca_never_replaces_and_warns_about_drift(ca):
    before = snapshot(ca)
    result = authority.ensure_ca(ca, authority.CASpec(common_name="Other", intermediate=True), CAKeys("pass"), NOW)
    assert not result.changed and snapshot(ca) == before
    assert any("common name differs" in w and "CA rollover" in w for w in result.warnings)


def test_wrong_or_missing_ca_passphrase_is_named(ca):
    with pytest.raises(pki.PKIError, match="root-ca-key.pem cannot be read with the given passphrase"):
        authority.load_issuer(ca, CAKeys("wrong"))
    with pytest.raises(pki.PKIError, match="root-ca-key.pem is encrypted; give its passphrase"):
        authority.load_issuer(ca, CAKeys())


def test_corrupt_ca_cert_is_named(ca):
    with open(os.path.join(ca, "root-ca.pem"), "wb") as f:
        f.write(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(pki.PKIError, match="root-ca.pem holds a corrupt certificate"):
        authority.load_issuer(ca, CAKeys("pass"))


def test_bulk_issue_then_idempotent_then_forced(ca):
    first = run(ca, requests("a", "b", "c"))
    assert [o.status for o in first] == ["issued"] * 3 and {o.reason for o in first} == {"missing"}
    cert_path = os.path.join(ca, "issued", "a", "cert.pem")
    chain = pki.load_certificates(open(cert_path, "rb").read(), cert_path)
    assert len(chain) == 2 and pki.common_name_of(chain[1]) == "mtls.fleet intermediate CA"
    assert mode(os.path.join(ca, "issued", "a", "key.pem")) == 0o600
    assert mode(os.path.join(ca, "issued")) == 0o700

    before = snapshot(ca)
    second = run(ca, requests("a", "b", "c"), now=NOW + DAY)
    assert [o.status for o in second] == ["unchanged"] * 3 and snapshot(ca) == before

    third = run(ca, requests("a", "b", "c"), force=True)
    assert [o.status for o in third] == ["renewed"] * 3 and {o.reason for o in third} == {"forced"}
    assert all(o.before.serial_number != o.after.serial_number for o in third)


def test_unchanged_outcomes_judge_without_the_ca_key_as_issue_does(ca):
    store, reqs = os.path.join(ca, "issued"), requests("a", "b", "c")
    certificates_only = authority.load_issuer(ca, None)
    assert certificates_only.key is None
    assert authority.unchanged_outcomes(store, reqs, certificates_only, pki.Policy(), NOW) is None  # nothing issued yet
    run(ca, reqs)
    kept = authority.unchanged_outcomes(store, reqs, certificates_only, pki.Policy(), NOW + DAY)
    issued = run(ca, reqs, now=NOW + DAY)
    assert [o.result(True) for o in kept] == [o.result(True) for o in issued]
    assert authority.unchanged_outcomes(store, reqs, certificates_only, pki.Policy(), NOW + DAY, force=True) is None
    os.unlink(os.path.join(store, "c", "key.pem"))
    assert authority.unchanged_outcomes(store, reqs, certificates_only, pki.Policy(), NOW + DAY) is None


def test_renewal_rotates_the_key_and_keeps_the_previous_generation(ca):
    run(ca, requests("a"))
    key_path = os.path.join(ca, "issued", "a", "key.pem")
    old_key = open(key_path, "rb").read()
    run(ca, requests("a"), force=True)
    assert open(key_path, "rb").read() != old_key
    previous = os.path.join(ca, "issued", os.readlink(os.path.join(ca, "issued", ".a.previous")))
    assert open(os.path.join(previous, "key.pem"), "rb").read() == old_key
    assert os.readlink(os.path.join(ca, "issued", "a")) == ".a.gen2" and previous.endswith(".a.gen1")
    assert os.stat(os.path.join(ca, "issued", "a")).st_mode & 0o777 == 0o700


def test_rotate_key_false_keeps_the_key(ca):
    run(ca, requests("a"))
    key_path = os.path.join(ca, "issued", "a", "key.pem")
    old_key = open(key_path, "rb").read()
    outcome = run(ca, requests("a", rotate_key=False), force=True)[0]
    assert outcome.status == "renewed" and open(key_path, "rb").read() == old_key


def test_renewal_window_and_san_change_are_reported(ca):
    run(ca, requests("a", "b", lifetime="30d"))
    changed = authority.parse_requests(
        [{"name": "a", "subject_alt_name": ["DNS:a.example.com"], "lifetime": "30d"},
         {"name": "b", "subject_alt_name": ["DNS:b.example.com", "IP:10.0.0.2"], "lifetime": "30d"}], {})
    outcomes = run(ca, changed, now=NOW + 21 * DAY)
    assert [(o.name, o.reason) for o in outcomes] == [("a", "renew_window"), ("b", "sans_changed")]


def test_a_tampered_key_is_detected_and_healed(ca):
    run(ca, requests("a"))
    key_path = os.path.join(ca, "issued", "a", "key.pem")
    with open(key_path, "wb") as f:
        f.write(pki.key_to_pem(pki.KeyType.ECDSA_P256.generate()))
    outcome = run(ca, requests("a"))[0]
    assert outcome.reason == "key_mismatch"
    assert run(ca, requests("a"))[0].status == "unchanged"


def test_csr_mode_never_writes_a_key(ca):
    host_key = pki.KeyType.ECDSA_P256.generate()
    csr = pki.make_csr(host_key, "a").decode()
    outcome = run(ca, requests("a", csr=csr))[0]
    assert outcome.status == "issued" and outcome.key_path is None
    assert not os.path.exists(os.path.join(ca, "issued", "a", "key.pem"))
    leaf = pki.load_certificates(outcome.cert_pem, "cert")[0]
    assert pki.key_mismatch(leaf, host_key) is None
    assert run(ca, requests("a", csr=csr))[0].status == "unchanged"
    new_csr = pki.make_csr(pki.KeyType.ECDSA_P256.generate(), "a").decode()
    assert run(ca, requests("a", csr=new_csr))[0].reason == "key_mismatch"


def test_csr_names_are_ignored_the_request_decides(ca):
    csr = pki.make_csr(pki.KeyType.ECDSA_P256.generate(), "admin").decode()
    leaf = pki.load_certificates(run(ca, requests("a", csr=csr))[0].cert_pem, "cert")[0]
    assert pki.common_name_of(leaf) == "a" and pki.sans_of(leaf) == ("DNS:a.example.com",)


def test_check_mode_reports_but_writes_nothing(ca):
    before = snapshot(ca)
    outcomes = run(ca, requests("a", "b"), check_mode=True)
    assert [o.status for o in outcomes] == ["issued", "issued"] and snapshot(ca) == before


def test_every_bad_request_is_reported_at_once_and_nothing_changes(ca):
    run(ca, requests("a"))
    before = snapshot(ca)
    raw = [
        {"name": "a", "subject_alt_name": ["DNS:bad name"]},
        {"name": "b", "subject_alt_name": ["DNS:b.example.com"], "key_type": "dsa"},
        {"name": "c", "subject_alt_name": ["DNS:c.example.com"], "lifetime": "forever"},
        {"name": "../etc", "subject_alt_name": ["DNS:x.example.com"]},
        {"name": "d", "subject_alt_name": ["DNS:d.example.com"], "colour": "red"},
        {"name": "e", "subject_alt_name": ["DNS:e.example.com"], "csr": "not a csr"},
    ]
    with pytest.raises(pki.PKIError) as err:
        authority.parse_requests(raw, {})
    message = str(err.value)
    for part in ("certificate 'a': subject_alt_name: 'DNS:bad name' is not a valid DNS name",
                 "certificate 'b': key_type: unknown key type 'dsa'",
                 "certificate 'c': lifetime: 'forever' is not a duration",
                 "certificate '../etc': name:",
                 "certificate 'd': unknown field(s) colour",
                 "certificate 'e': csr is not a PEM certificate signing request"):
        assert part in message
    assert snapshot(ca) == before


def test_policy_violations_stop_the_whole_batch(ca):
    run(ca, requests("a"))
    before = snapshot(ca)
    policy = pki.Policy.parse({"allowed_dns": ["*.example.com"], "max_lifetime": "30d"})
    reqs = authority.parse_requests(
        [{"name": "a", "subject_alt_name": ["DNS:a.example.com"], "lifetime": "30d"},
         {"name": "evil", "subject_alt_name": ["DNS:bank.com"], "lifetime": "30d"},
         {"name": "long", "subject_alt_name": ["DNS:long.example.com"], "lifetime": "400d"}], {})
    with pytest.raises(pki.PKIError) as err:
        run(ca, reqs, policy=policy, force=True)
    assert "certificate 'evil': subject_alt_name: DNS:bank.com is not allowed by policy.allowed_dns" in str(err.value)
    assert "certificate 'long': lifetime: 400d exceeds policy.max_lifetime 30d" in str(err.value)
    assert snapshot(ca) == before


def test_duplicate_names_are_refused():
    with pytest.raises(pki.PKIError, match="name is used twice"):
        requests("a", "a")


def test_defaults_apply_and_requests_override():
    reqs = authority.parse_requests(
        [{"name": "a", "subject_alt_name": ["DNS:a"]}, {"name": "b", "subject_alt_name": ["DNS:b"], "profile": "client"}],
        {"profile": "server", "key_type": "ecdsa-p384", "lifetime": "7d"})
    assert [r.spec.profile.value for r in reqs] == ["server", "client"]
    assert {r.spec.key_type.value for r in reqs} == {"ecdsa-p384"} and reqs[0].spec.lifetime == 7 * DAY


def test_plan_without_ca_says_every_request_would_be_issued(tmp_path):
    assert not authority.ca_exists(str(tmp_path / "ca"))
    plan = authority.plan_without_ca(str(tmp_path / "ca" / "issued"), requests("a", "b"))
    assert [(o.name, o.status, o.reason) for o in plan] == [("a", "issued", "missing"), ("b", "issued", "missing")]
    assert not (tmp_path / "ca").exists()


def test_unchanged_certificates_still_return_their_content(ca):
    first = run(ca, requests("a"))[0]
    again = run(ca, requests("a"))[0]
    assert again.status == "unchanged" and again.result(return_content=True)["certificate"] == first.cert_pem.decode()


def test_a_corrupt_certificate_in_the_store_is_reissued_with_the_reason(ca):
    run(ca, requests("a"))
    cert_path = os.path.join(ca, "issued", "a", "cert.pem")
    with open(cert_path, "wb") as handle:
        handle.write(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    outcome = run(ca, requests("a"))[0]
    assert (outcome.status, outcome.reason) == ("renewed", "corrupt") and "corrupt" in outcome.detail
    assert pki.load_certificates(open(cert_path, "rb").read(), cert_path)


@pytest.mark.parametrize("name", ["web\n", "web\r\n", "\nweb"])
def test_a_certificate_name_with_a_newline_is_refused_before_anything_is_written(name):
    with pytest.raises(pki.PKIError, match="must start with a letter or digit and hold only letters"):
        authority.parse_requests([{"name": name, "subject_alt_name": ["DNS:web"]}], {})


def fleet_requests(*hosts_and_services):
    """The requests the roles make: certificate_requests for each (host, service)."""
    from ansible_collections.mtls.fleet.plugins.filter.certificate_requests import certificate_requests
    raw = [r for host, service in hosts_and_services for r in certificate_requests([{"name": service}], host, "example.org")]
    return authority.parse_requests(raw, {})


def test_colliding_names_in_one_run_are_refused_naming_both_hosts(ca):
    before = snapshot(ca)
    with pytest.raises(pki.PKIError) as err:
        run(ca, fleet_requests(("a-b", "c"), ("a", "b-c")))
    assert ("certificate 'a-b-c': name is used twice (host a-b's service c and host a's service b-c); every certificate needs its own "
            "name: rename one of the services (or hosts)") in str(err.value)
    assert snapshot(ca) == before


def test_a_name_kept_for_one_host_is_refused_to_another_in_a_later_run(ca):
    """As under --limit: host a-b's run, then host a's."""
    first = run(ca, fleet_requests(("a-b", "c")))[0]
    assert open(os.path.join(ca, "issued", "a-b-c", "host")).read() == "a-b\n"
    before = snapshot(ca)
    for judge in (run, unchanged):
        with pytest.raises(pki.PKIError) as err:
            judge(ca, fleet_requests(("a", "b-c")))
        assert str(err.value) == ("certificate 'a-b-c': the CA store keeps this name for host a-b; host a's service b-c would take it over. "
                                  "Rename the service (or the host) so that its <host>-<service> name differs")
        assert snapshot(ca) == before
    again = run(ca, fleet_requests(("a-b", "c")))[0]
    assert again.status == "unchanged" and pki.serial_text(again.after) == pki.serial_text(first.after)


def test_a_name_issued_before_the_store_kept_hosts_is_known_by_its_common_name(ca):
    raw = {"name": "a-b-c", "common_name": "c", "subject_alt_name": ["DNS:a-b"]}  # as 0.4 issued it: no host
    run(ca, authority.parse_requests([raw], {}))
    with pytest.raises(pki.PKIError, match="keeps this name for service c of another host; host a's service b-c would take it over"):
        run(ca, fleet_requests(("a", "b-c")))
    adopted = run(ca, fleet_requests(("a-b", "c")), force=True)[0]  # its own host: accepted, and now recorded
    assert adopted.status == "renewed" and open(os.path.join(ca, "issued", "a-b-c", "host")).read() == "a-b\n"


def unchanged(ca, reqs):
    return authority.unchanged_outcomes(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, None), pki.Policy(), NOW)


@pytest.mark.parametrize("fields", [{"renew_before": "90d", "lifetime": "90d"}, {"renew_before": "120d", "lifetime": "30d"}, {"renew_before": "91d"}])
def test_renew_before_at_least_the_lifetime_is_refused_not_renewed_forever(fields):
    with pytest.raises(pki.PKIError, match=r"renew_before \(.*\) must be shorter than lifetime \(.*\), or every run renews"):
        requests("web", **fields)


def test_a_common_name_given_directly_must_be_an_identity():
    with pytest.raises(pki.PKIError, match="certificate 'web': common_name: 'x,CN=admin' is not an identity"):
        authority.parse_requests([{"name": "web", "common_name": "x,CN=admin", "subject_alt_name": ["DNS:web"]}], {})
