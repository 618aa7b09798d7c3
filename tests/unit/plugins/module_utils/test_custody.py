"""CA keys in a real PKCS#11 token (SoftHSM2): made there, never extractable, and every signing
path (CA, leaves, CRLs, rollover) uses them; openssl verifies what they signed."""

import base64
import json
import os
import subprocess
import sys

import pkcs11
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, ObjectClass

from ansible_collections.mtls.fleet.plugins.module_utils import authority, custody, ledger, pki, revocation, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(authority.__file__), "..", "..", "..", "..", ".."))
TOKEN, PIN, SO_PIN = "fleet-ca", "246810", "13579111"
SPEC = authority.CASpec(intermediate=True)
LIFETIME, RENEW = pki.parse_duration("7d", "lifetime"), pki.RenewBefore.parse("2d")


@pytest.fixture(name="softhsm", scope="module")
def fixture_softhsm(tmp_path_factory):
    """A SoftHSM2 token directory of its own; SoftHSM2 reads its configuration once per process."""
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
                   check=True, capture_output=True)
    return conf


@pytest.fixture(name="token")
def fixture_token(softhsm):
    token = custody.open_token(SOFTHSM, TOKEN, PIN)
    yield token
    token.close()


def token_ca(tmp_path, token, spec=SPEC):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, spec, CAKeys(token=token), pki.utcnow())
    return path


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def issue(ca, keys, names):
    """Issue in the token and record it in the ledger, as mtls.fleet.certificates does."""
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}.example"]} for n in names], {})
    issuer = authority.load_issuer(ca, keys)
    outcomes = authority.issue(os.path.join(ca, authority.ISSUED), requests, issuer, pki.Policy(), pki.utcnow(),
                               revoked=revocation.revoked_serials(ca))
    ledger.record_issuance(ca, outcomes, {}, issuer, pki.utcnow())
    return outcomes


def private_objects(token):
    return list(token.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))


def test_ca_keys_are_made_in_the_token_and_cannot_leave_it(tmp_path, token):
    before = len(private_objects(token))
    ca = token_ca(tmp_path, token)
    for name in (authority.ROOT_KEY, authority.INTERMEDIATE_KEY):
        stored = open(os.path.join(ca, name), "rb").read()
        assert stored.startswith(b"pkcs11:token=fleet-ca;object=mtls-fleet%20mtls.fleet%20") and b"PRIVATE KEY" not in stored
        assert oct(os.stat(os.path.join(ca, name)).st_mode & 0o777) == "0o600"
    made = private_objects(token)[before:]
    assert sorted(obj.label for obj in made) == ["mtls-fleet mtls.fleet intermediate CA", "mtls-fleet mtls.fleet root CA"]
    for obj in made:  # read back from the token, not from what we asked for
        assert obj[Attribute.SENSITIVE] and obj[Attribute.ALWAYS_SENSITIVE]
        assert not obj[Attribute.EXTRACTABLE] and obj[Attribute.NEVER_EXTRACTABLE]
        assert obj[Attribute.TOKEN] and obj[Attribute.PRIVATE]
        assert obj[Attribute.SIGN] and not obj[Attribute.DERIVE]  # signing only
        assert not obj[Attribute.COPYABLE] and not obj[Attribute.MODIFIABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            obj[Attribute.VALUE]  # pylint: disable=pointless-statement
    key = authority.load_issuer(ca, CAKeys(token=token)).key
    with pytest.raises(pki.PKIError, match="stays in its token"):
        pki.key_to_pem(key)
    ca_files = [os.path.join(top, f) for top, _dirs, files in os.walk(ca) for f in files]
    assert not any(b"PRIVATE KEY" in open(f, "rb").read() for f in ca_files)
    # run again: the CA exists, nothing new in the token
    assert not authority.ensure_ca(ca, SPEC, CAKeys(token=token), pki.utcnow()).changed
    assert len(private_objects(token)) == before + 2


def test_leaves_and_crls_signed_in_the_token_verify_with_openssl(tmp_path, token):
    ca = token_ca(tmp_path, token)
    keys = CAKeys(token=token)
    outcomes = issue(ca, keys, [f"svc-{i}" for i in range(12)])  # issued on several threads, one session
    assert {o.status for o in outcomes} == {"issued"}
    root, intermediate = os.path.join(ca, authority.ROOT_CERT), os.path.join(ca, authority.INTERMEDIATE_CERT)
    revocation.revoke(ca, [revocation.RevokeRequest(name="svc-3", reason=pki.RevocationReason.KEY_COMPROMISE)], keys, pki.utcnow())
    result = revocation.ensure_crls(ca, keys, LIFETIME, RENEW, pki.utcnow())
    assert [c["issuer"] for c in result.crls] == ["CN=mtls.fleet root CA", "CN=mtls.fleet intermediate CA"]
    crl = os.path.join(ca, revocation.CRL_FILE)
    for outcome in outcomes:
        leaf = os.path.join(ca, authority.ISSUED, outcome.name, authority.CERT_FILE)
        checked = openssl("verify", "-crl_check_all", "-CAfile", root, "-untrusted", intermediate, "-CRLfile", crl, leaf)
        if outcome.name == "svc-3":
            assert "certificate revoked" in checked.stderr + checked.stdout
        else:
            assert checked.returncode == 0, checked.stderr
    # a CRL whose signature is not the intermediate's would fail this check: flip a byte of one
    tampered = tmp_path / "tampered.pem"
    der = bytearray(pki.load_crls(open(crl, "rb").read(), "crl")[1].public_bytes(Encoding.DER))
    der[-5] ^= 1
    tampered.write_bytes(b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(bytes(der)) + b"-----END X509 CRL-----\n")
    leaf = os.path.join(ca, authority.ISSUED, "svc-1", authority.CERT_FILE)
    assert openssl("verify", "-crl_check", "-CAfile", root, "-untrusted", intermediate, "-CRLfile", str(tampered), leaf).returncode != 0


def test_rollover_with_token_keys_makes_new_keys_there_and_destroys_the_old(tmp_path, token):
    ca = token_ca(tmp_path, token)
    keys = CAKeys(token=token)
    old_uris = [open(os.path.join(ca, n), "rb").read() for n in (authority.ROOT_KEY, authority.INTERMEDIATE_KEY)]
    for phase in rollover.PHASES:
        rollover.begin(ca, phase, rollover.Kind.ROOT if phase == "trust" else None, SPEC, keys, pki.utcnow())
        rollover.verified(ca, phase, keys, pki.utcnow())
    issuer = authority.load_issuer(ca, keys)
    assert pki.common_name_of(issuer.cert) == "mtls.fleet intermediate CA G2"
    assert isinstance(issuer.key, custody.TokenKey)
    assert "G2" in open(os.path.join(ca, authority.ROOT_KEY)).read()
    for uri in old_uris:  # retired with the old CA: gone from the token
        with pytest.raises(pki.PKIError, match="holds no private key"):
            keys.load(uri, "old key")
    issue(ca, keys, ["after-rollover"])
    leaf = os.path.join(ca, authority.ISSUED, "after-rollover", authority.CERT_FILE)
    checked = openssl("verify", "-CAfile", os.path.join(ca, authority.ROOT_CERT), "-untrusted",
                      os.path.join(ca, authority.INTERMEDIATE_CERT), leaf)
    assert checked.returncode == 0, checked.stderr
    # The ledger's entries were signed in the token, by the old CA's keys and then the new ones,
    # and still verify after the old keys were destroyed.
    verdict = ledger.verify(ca)
    assert verdict.intact and not verdict.unrecorded and verdict.entries == 8, verdict.summary()
    assert len({json.loads(line)["signer"] for line in open(ledger.path_of(ca), "rb")}) == 2


def test_a_file_key_ca_moves_into_the_token_with_a_rollover(tmp_path, token):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, SPEC, CAKeys("a passphrase"), pki.utcnow())
    assert b"ENCRYPTED PRIVATE KEY" in open(os.path.join(ca, authority.ROOT_KEY), "rb").read()
    keys = CAKeys("a passphrase", token=token)  # reads the old files, makes new keys in the token
    for phase in rollover.PHASES:
        rollover.begin(ca, phase, rollover.Kind.ROOT if phase == "trust" else None, SPEC, keys, pki.utcnow())
        rollover.verified(ca, phase, keys, pki.utcnow())
    for name in (authority.ROOT_KEY, authority.INTERMEDIATE_KEY):
        assert open(os.path.join(ca, name), "rb").read().startswith(b"pkcs11:")
    assert isinstance(authority.load_issuer(ca, CAKeys(token=token)).key, custody.TokenKey)


def test_check_mode_makes_nothing_in_the_token(tmp_path, token):
    before = len(private_objects(token))
    result = authority.ensure_ca(str(tmp_path / "ca"), SPEC, CAKeys(token=token), pki.utcnow(), check_mode=True)
    assert result.changed and result.created == ["root", "intermediate"]
    assert len(private_objects(token)) == before and not os.path.exists(tmp_path / "ca")


def test_p384_in_the_token_and_rsa_refused(tmp_path, token):
    ca = token_ca(tmp_path, token, authority.CASpec(key_type=pki.KeyType.ECDSA_P384))
    assert pki.KeyType.of(authority.load_issuer(ca, CAKeys(token=token)).key) is pki.KeyType.ECDSA_P384
    issue(ca, CAKeys(token=token), ["p384-leaf"])
    leaf = os.path.join(ca, authority.ISSUED, "p384-leaf", authority.CERT_FILE)
    assert openssl("verify", "-CAfile", os.path.join(ca, authority.ROOT_CERT), leaf).returncode == 0
    with pytest.raises(pki.PKIError, match="key_type rsa-3072: CA keys in a PKCS#11 token are ecdsa-p256 or ecdsa-p384"):
        authority.ensure_ca(str(tmp_path / "rsa"), authority.CASpec(key_type=pki.KeyType.RSA_3072), CAKeys(token=token), pki.utcnow())
    assert not os.path.exists(tmp_path / "rsa" / authority.ROOT_CERT)


def test_clear_errors(tmp_path, token):
    wrong_pin = subprocess.run(  # a login holds for the whole process, so a wrong PIN is tried in a new one
        [sys.executable, "-c", "import sys\nfrom ansible_collections.mtls.fleet.plugins.module_utils import custody, pki\n"
         "try:\n    custody.open_token(*sys.argv[1:])\nexcept pki.PKIError as exc:\n    print(exc)", SOFTHSM, TOKEN, "000000"],
        capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS))
    assert "pkcs11.pin: the PIN for token 'fleet-ca' is wrong" in wrong_pin.stdout, wrong_pin.stderr
    with pytest.raises(pki.PKIError, match=r"has no token labelled 'nope' \(tokens there: .*'fleet-ca'"):
        custody.open_token(SOFTHSM, "nope", PIN)
    with pytest.raises(pki.PKIError, match=r"pkcs11.module: /usr/lib/x86_64-linux-gnu/libz.so.1 is not a PKCS#11 library \(.*C_GetFunctionList"):
        custody.open_token("/usr/lib/x86_64-linux-gnu/libz.so.1", TOKEN, PIN)
    with pytest.raises(pki.PKIError, match=r"pkcs11.module: /nonexistent/libpkcs11.so does not exist"):
        custody.open_token("/nonexistent/libpkcs11.so", TOKEN, PIN)
    ca = token_ca(tmp_path, token)
    key_file = os.path.join(ca, authority.ROOT_KEY)
    with pytest.raises(pki.PKIError, match=r"names a key in a PKCS#11 token .*give the token's options"):
        authority.load_issuer(ca, CAKeys())
    renamed = open(key_file).read().replace("object=mtls-fleet", "object=someone-else")
    open(key_file, "w").write(renamed)
    with pytest.raises(pki.PKIError, match=r"token 'fleet-ca' holds no private key labelled 'someone-else mtls.fleet root CA'"):
        authority.load_issuer(ca, CAKeys(token=token))


def test_a_token_without_ecdsa_is_named(token):
    offered = token.session.token.slot.get_mechanisms()
    assert custody.missing_mechanisms(offered) == []
    without_ecdsa = [m for m in offered if m.name != "ECDSA"]
    assert custody.missing_mechanisms(without_ecdsa) == ["CKM_ECDSA"]


def test_without_python_pkcs11_the_fix_is_named():
    code = ("import sys\nsys.modules['pkcs11'] = None  # as on a CA host without the library\n"
            "from ansible_collections.mtls.fleet.plugins.module_utils import custody, pki\n"
            "try:\n    custody.open_token(*sys.argv[1:])\nexcept pki.PKIError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code, SOFTHSM, TOKEN, PIN], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS))
    assert "python-pkcs11 is needed for CA keys in a PKCS#11 token" in done.stdout, done.stderr
    assert "pip install 'python-pkcs11>=0.10'" in done.stdout
