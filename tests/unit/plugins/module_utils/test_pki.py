"""The pure PKI core: what certificates say, what the CA refuses, and why a cert renews."""

import datetime
import ipaddress
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mtls.fleet.plugins.module_utils import pki

from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW, issue, make_issuer, spec


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


# --- CA ------------------------------------------------------------------------------------


def test_root_ca_extensions():
    issuer = make_issuer()
    root = issuer.roots[0]
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ext(root, x509.SubjectKeyIdentifier).value.digest
    assert root.issuer == root.subject and pki.signed_by(root, root)


def test_intermediate_is_signed_by_root_with_aki_and_path_length_zero():
    issuer = make_issuer(intermediate=True)
    inter, root = issuer.chain[0], issuer.roots[0]
    assert pki.signed_by(inter, root)
    assert ext(inter, x509.BasicConstraints).value.path_length == 0
    aki = ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(root, x509.SubjectKeyIdentifier).value.digest


def test_name_constraints_are_critical_and_round_trip():
    constraints = pki.NameConstraints.parse({"dns": ["example.com"], "ips": ["10.0.0.0/8"], "uris": ["example.org"]})
    root = make_issuer(constraints=constraints).roots[0]
    nc = ext(root, x509.NameConstraints)
    assert nc.critical
    assert pki.NameConstraints.of(root) == constraints


# --- leaves --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile, usages",
    [
        (pki.Profile.SERVER, [ExtendedKeyUsageOID.SERVER_AUTH]),
        (pki.Profile.CLIENT, [ExtendedKeyUsageOID.CLIENT_AUTH]),
        (pki.Profile.SERVICE, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_leaf_profile_sets_extended_key_usage(profile, usages):
    leaf = issue(make_issuer(), spec(profile=profile))[0]
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == usages
    assert pki.Profile.of(leaf) is profile


def test_leaf_extensions_that_tls_stacks_demand():
    issuer = make_issuer(intermediate=True)
    leaf = issue(issuer, spec(sans=("DNS:web.example.com", "IP:10.1.2.3", "URI:spiffe://example.org/web")))[0]
    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment and not ku.value.key_cert_sign
    san = ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.org/web"]
    aki = ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(issuer.cert, x509.SubjectKeyIdentifier).value.digest
    assert pki.signed_by(leaf, issuer.cert)


def test_rsa_leaf_adds_key_encipherment():
    leaf = issue(make_issuer(), spec(key_type=pki.KeyType.RSA_2048))[0]
    assert ext(leaf, x509.KeyUsage).value.key_encipherment
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize("key_type", list(pki.KeyType))
def test_every_key_type_issues_and_verifies(key_type):
    issuer = make_issuer(key_type=key_type if not key_type.is_rsa else pki.KeyType.ECDSA_P256)
    leaf, key = issue(issuer, spec(key_type=key_type))
    assert pki.KeyType.of(leaf.public_key()) is key_type
    assert pki.key_mismatch(leaf, key) is None
    assert pki.chain_problem(leaf, [], issuer.roots, NOW) is None


def test_validity_is_backdated_for_clock_skew_and_lasts_the_lifetime():
    leaf = issue(make_issuer(), spec(lifetime=30 * DAY))[0]
    assert pki.not_before(leaf) == NOW - pki.CLOCK_SKEW
    assert pki.not_after(leaf) == NOW + 30 * DAY


def test_serials_are_random_positive_and_distinct():
    issuer = make_issuer()
    serials = {issue(issuer)[0].serial_number for attempt in range(20)}
    assert len(serials) == 20 and all(s > 2**64 for s in serials)


def test_default_key_type_is_p256():
    leaf = issue(make_issuer())[0]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"


# --- input parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ("DNS:bad name", "not a valid DNS name"),
        ("DNS:-web.example.com", "not a valid DNS name"),
        ("IP:10.0.0.300", "not an IP address"),
        ("web.example.com", "has no type prefix; write 'DNS:web.example.com'"),
        ("URI:not a uri", "not a URI"),
        ("EMAIL:a@b", "has no type prefix"),
    ],
)
def test_malformed_sans_are_refused_with_the_fix(entry, message):
    with pytest.raises(pki.PKIError, match=message):
        pki.parse_san(entry)


def test_san_forms_are_canonical_and_sorted():
    leaf_spec = spec(sans=("DNS:Web.Example.COM.", "IP:10.0.0.1", "DNS:*.api.example.com"))
    assert leaf_spec.sans == ("DNS:*.api.example.com", "DNS:web.example.com", "IP:10.0.0.1")


def test_a_certificate_without_names_is_refused():
    with pytest.raises(pki.PKIError, match="needs at least one name"):
        spec(sans=())


@pytest.mark.parametrize("value, expected", [("90d", 90 * DAY), ("12h", DAY / 2), ("2w", 14 * DAY), (3600, DAY / 24)])
def test_durations(value, expected):
    assert pki.parse_duration(value, "lifetime") == expected


@pytest.mark.parametrize("value", ["90 days", "0d", "-5d", "", "1y"])
def test_bad_durations_name_the_field(value):
    with pytest.raises(pki.PKIError, match="lifetime: .* is not a duration"):
        pki.parse_duration(value, "lifetime")


def test_renew_before_as_fraction_or_period():
    assert pki.RenewBefore.parse("25%").window(100 * DAY) == 25 * DAY
    assert pki.RenewBefore.parse("10d").window(100 * DAY) == 10 * DAY
    with pytest.raises(pki.PKIError, match="between 0% and 100%"):
        pki.RenewBefore.parse("150%")


def test_unknown_key_type_lists_the_choices():
    with pytest.raises(pki.PKIError, match="unknown key type 'dsa'; use one of ecdsa-p256"):
        pki.KeyType.parse("dsa")


# --- issuance policy -----------------------------------------------------------------------


def test_name_constraints_bind_every_san_type():
    constraints = pki.NameConstraints.parse({"dns": ["example.com"], "ips": ["10.0.0.0/8"], "uris": ["example.org"]})
    issuer = make_issuer(intermediate=True, constraints=constraints)
    ok = spec(sans=("DNS:a.example.com", "DNS:example.com", "IP:10.9.9.9", "URI:spiffe://example.org/a"))
    assert pki.Policy().violations(ok, issuer, NOW) == []
    bad = spec(sans=("DNS:evil.com", "DNS:notexample.com", "IP:192.168.1.1", "URI:spiffe://other.org/a"))
    problems = pki.Policy().violations(bad, issuer, NOW)
    assert len(problems) == 4 and all("outside the CA's name constraints" in p for p in problems)


def test_policy_allow_lists_and_max_lifetime():
    policy = pki.Policy.parse(
        {"allowed_dns": ["*.svc.example.com"], "allowed_ips": ["10.0.0.0/8"], "allowed_uris": ["spiffe://example.org/"], "max_lifetime": "30d"}
    )
    issuer = make_issuer()
    assert policy.violations(spec(sans=("DNS:a.svc.example.com", "IP:10.0.0.1", "URI:spiffe://example.org/a"), lifetime=30 * DAY), issuer, NOW) == []
    problems = policy.violations(spec(sans=("DNS:svc.example.com.evil.com", "IP:11.0.0.1", "URI:spiffe://evil.org/a"), lifetime=31 * DAY), issuer, NOW)
    assert [p.split(" is ")[0].split(" exceeds")[0] for p in problems] == [
        "subject_alt_name: DNS:svc.example.com.evil.com",
        "subject_alt_name: IP:11.0.0.1",
        "subject_alt_name: URI:spiffe://evil.org/a",
        "lifetime: 31d",
    ]
    assert "policy.allowed_dns" in problems[0] and "policy.max_lifetime" in problems[3]


def test_a_leaf_may_not_outlive_its_ca():
    issuer = make_issuer(lifetime=60 * DAY)
    problems = pki.Policy().violations(spec(lifetime=90 * DAY), issuer, NOW)
    assert len(problems) == 1 and "would outlive the issuing CA" in problems[0] and "roll the CA over" in problems[0]


def test_csr_asking_for_ca_true_is_refused():
    key = pki.KeyType.ECDSA_P256.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "evil")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, pki.KeyType.ECDSA_P256.signature_hash())
    )
    pem = csr.public_bytes(pki.serialization.Encoding.PEM)
    with pytest.raises(pki.PKIError, match="asks for CA:TRUE"):
        pki.load_csr(pem, "csr")


def test_csr_with_broken_signature_is_refused():
    pem = pki.make_csr(pki.KeyType.ECDSA_P256.generate(), "web")
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(pki.serialization.Encoding.DER))
    der[-3] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(pki.serialization.Encoding.PEM)
    with pytest.raises(pki.PKIError, match="signature does not verify"):
        pki.load_csr(tampered, "csr")


# --- the renewal decision ------------------------------------------------------------------


def verdict(chain, key_problem=None, leaf_spec=None, issuer=None, now=NOW, force=False, renew_before="33%"):
    return pki.renewal_verdict(
        chain, key_problem, leaf_spec or spec(), issuer.chain if issuer else (), issuer.roots if issuer else None,
        pki.RenewBefore.parse(renew_before), now, force,
    )


@pytest.fixture(name="issued")
def fixture_issued():
    issuer = make_issuer(intermediate=True)
    leaf, key = issue(issuer, spec(lifetime=90 * DAY))
    return issuer, leaf, key


def test_verdict_unchanged_when_everything_fits(issued):
    issuer, leaf = issued[:2]
    v = verdict([leaf, *issuer.chain], issuer=issuer, now=NOW + 10 * DAY)
    assert not v.renew and "valid until" in v.detail


def test_verdict_missing_and_corrupt():
    assert verdict(None).reason is pki.Reason.MISSING
    v = verdict(pki.PKIError("cert.pem holds a corrupt certificate"))
    assert v.reason is pki.Reason.CORRUPT and "corrupt" in v.detail


def test_verdict_key_mismatch(issued):
    issuer, leaf = issued[:2]
    other = pki.KeyType.ECDSA_P256.generate()
    v = verdict([leaf], key_problem=pki.key_mismatch(leaf, other), issuer=issuer)
    assert v.reason is pki.Reason.KEY_MISMATCH


def test_verdict_issuer_changed_when_ca_replaced(issued):
    leaf = issued[1]
    new_ca = make_issuer(intermediate=True)
    v = verdict([leaf], issuer=new_ca)
    assert v.reason is pki.Reason.ISSUER_CHANGED and "not issued by the current CA" in v.detail


@pytest.mark.parametrize(
    "changed, reason",
    [
        (dict(common_name="web2"), pki.Reason.SUBJECT_CHANGED),
        (dict(sans=("DNS:web.example.com", "IP:10.0.0.7")), pki.Reason.SANS_CHANGED),
        (dict(profile=pki.Profile.SERVER), pki.Reason.PROFILE_CHANGED),
        (dict(key_type=pki.KeyType.ECDSA_P384), pki.Reason.KEY_TYPE_CHANGED),
    ],
)
def test_verdict_spec_changes(issued, changed, reason):
    issuer, leaf = issued[:2]
    v = verdict([leaf, *issuer.chain], leaf_spec=spec(**changed), issuer=issuer)
    assert v.reason is reason


def test_verdict_sans_change_says_what(issued):
    issuer, leaf = issued[:2]
    v = verdict([leaf, *issuer.chain], leaf_spec=spec(sans=("DNS:api.example.com",)), issuer=issuer)
    assert v.detail == "add DNS:api.example.com; remove DNS:web.example.com"


def test_verdict_renew_window_boundary_with_default_last_third(issued):
    issuer, leaf = issued[:2]
    lifetime = pki.not_after(leaf) - pki.not_before(leaf)
    start = pki.not_after(leaf) - lifetime * 0.33
    assert not verdict([leaf], issuer=issuer, now=start - datetime.timedelta(seconds=1)).renew
    assert verdict([leaf], issuer=issuer, now=start).reason is pki.Reason.RENEW_WINDOW


def test_verdict_renew_before_as_period(issued):
    issuer, leaf = issued[:2]
    assert not verdict([leaf], issuer=issuer, now=NOW + 79 * DAY, renew_before="10d").renew
    assert verdict([leaf], issuer=issuer, now=NOW + 81 * DAY, renew_before="10d").reason is pki.Reason.RENEW_WINDOW


def test_verdict_expired(issued):
    issuer, leaf = issued[:2]
    v = verdict([leaf], issuer=None, now=NOW + 91 * DAY)
    assert v.reason is pki.Reason.EXPIRED


def test_verdict_forced_only_when_nothing_else_applies(issued):
    issuer, leaf = issued[:2]
    assert verdict([leaf], issuer=issuer, force=True).reason is pki.Reason.FORCED
    assert verdict(None, force=True).reason is pki.Reason.MISSING


def test_chain_problem_reports_expired_intermediate(issued):
    issuer, leaf = issued[:2]
    later = pki.not_after(issuer.chain[0]) + DAY
    assert "intermediate CA 'Test Intermediate' is not valid now" in pki.chain_problem(leaf, issuer.chain, issuer.roots, later)


def test_describe_never_holds_key_material(issued):
    issuer, leaf, key = issued
    facts = pki.describe(leaf, NOW)
    assert facts["serial"] == f"{leaf.serial_number:X}"
    assert facts["days_left"] == 90.0
    assert facts["not_after_timestamp"] == int((NOW + 90 * DAY).timestamp())
    assert facts["profile"] == "service" and facts["key_type"] == "ecdsa-p256"
    assert "PRIVATE" not in repr(facts)


# --- keys ----------------------------------------------------------------------------------


def test_encrypted_key_round_trip_and_clear_errors():
    key = pki.KeyType.ECDSA_P256.generate()
    pem = pki.key_to_pem(key, "s3cret")
    assert b"ENCRYPTED" in pem
    assert pki.public_bytes(pki.load_private_key(pem, "ca.key", "s3cret")) == pki.public_bytes(key)
    with pytest.raises(pki.PKIError, match="wrong passphrase"):
        pki.load_private_key(pem, "ca.key", "nope")
    with pytest.raises(pki.PKIError, match="is encrypted; give its passphrase"):
        pki.load_private_key(pem, "ca.key")
    with pytest.raises(pki.PKIError, match="not encrypted but a passphrase was given"):
        pki.load_private_key(pki.key_to_pem(key), "ca.key", "s3cret")
    with pytest.raises(pki.PKIError, match="not a readable PEM private key"):
        pki.load_private_key(b"garbage", "ca.key")


@pytest.mark.parametrize("value", ["999999999d", "36526d", 10**12])
def test_an_absurd_lifetime_is_refused_with_the_field_and_the_fix(value):
    with pytest.raises(pki.PKIError, match=r"lifetime: .* is more than 100 years; write e.g. '90d'"):
        pki.parse_duration(value, "lifetime")


@pytest.mark.parametrize("entry", ["DNS:web\n.example.org", "DNS:we\x00b.example.org", "URI:spiffe://example.org/web\x01", "URI:spiffe://example.org/\x7fweb"])
def test_control_characters_never_reach_a_san(entry):
    with pytest.raises(pki.PKIError, match="is not a valid DNS name|is not a URI"):
        pki.parse_san(entry)


def test_white_space_around_a_san_is_trimmed_as_everywhere_in_the_inventory():
    assert pki.parse_san("DNS:web.example.org\n") == pki.parse_san("DNS:web.example.org")


@pytest.mark.parametrize("common_name", ["web\n", "web\x00", "we\tb", "web\x85"])
def test_control_characters_never_reach_a_common_name(common_name):
    with pytest.raises(pki.PKIError, match="holds a control character"):
        pki.check_common_name(common_name)


@pytest.mark.parametrize("key_type", [pki.KeyType.ECDSA_P256, pki.KeyType.ED25519])
def test_an_encrypted_key_uses_600000_pbkdf2_rounds_and_openssl_reads_it(tmp_path, key_type):
    key = key_type.generate()
    pem = pki.key_to_pem(key, "correct horse battery")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pki.public_bytes(pki.load_private_key(pem, "key", "correct horse battery")) == pki.public_bytes(key)
    with pytest.raises(pki.PKIError):
        pki.load_private_key(pem, "key", "wrong horse battery")
    (tmp_path / "key.pem").write_bytes(pem)
    parsed = subprocess.run(["openssl", "asn1parse", "-in", str(tmp_path / "key.pem")], capture_output=True, text=True, check=True).stdout
    assert re.search(r":PBES2\n.*:PBKDF2\n.*INTEGER +:0927C0\n.*:hmacWithSHA256\n.*:aes-256-cbc", parsed, re.S), parsed  # 600,000
    public = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "key.pem"), "-passin", "pass:correct horse battery", "-pubout",
                             "-outform", "DER"], capture_output=True, check=True).stdout
    assert public == pki.public_bytes(key)


@pytest.mark.parametrize("entry, message", [
    ("URI:spiffe://exämple.org/web", "holds characters outside ASCII; write the host as its A-label"),
    ("IP:fe80::1%eth0", "has a scope (%eth0), which a certificate cannot hold; write 'IP:fe80::1'"),
    ("DNS:*.com", "is a wildcard over a whole top-level domain"),
    ("DNS:*", "is a wildcard over a whole top-level domain"),
    ("DNS:10.0.0.5", "is an IP address, not a DNS name; write 'IP:10.0.0.5'"),
])
def test_sans_no_client_could_match_or_that_would_renew_forever_are_refused_by_name(entry, message):
    with pytest.raises(pki.PKIError, match=re.escape(f"subject_alt_name: {entry!r} ") + ".*" + re.escape(message)):
        pki.parse_san(entry)


@pytest.mark.parametrize("entry", ["DNS:*.svc.example.com", "DNS:web-1", "IP:fe80::1", "URI:spiffe://xn--exmple-cua.org/web"])
def test_what_clients_match_is_accepted(entry):
    assert pki.san_text(pki.parse_san(entry)) == entry


@pytest.mark.parametrize("common_name", ["x,CN=admin", "web+admin", "a=b", "web 1", "", "-web", "w" * 65, 'we"b', "we\\b"])
def test_a_leaf_common_name_must_be_an_identity(common_name):
    with pytest.raises(pki.PKIError, match="is not an identity nginx allow-lists can match"):
        pki.check_identity(common_name)


@pytest.mark.parametrize("entry", ["URI:A://[", "URI:https://[::1/x", "URI:https://]x"])
def test_a_uri_with_an_unbalanced_bracket_is_refused_not_a_traceback(entry):
    with pytest.raises(pki.PKIError, match="is not a URI"):
        pki.parse_san(entry)
