"""The other formats of a service's generation, read by the programs that use them: HAProxy's
combined.pem, and Java's PKCS#12 keystore and truststore read by the JDK's keytool (a real JDK,
scripts/install-system.sh installs it). Written, kept, switched and rolled back with the PEM files."""

import grp
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, deploy, keystores, pki
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

KEYTOOL = shutil.which("keytool")
needs_keytool = pytest.mark.skipif(KEYTOOL is None and not os.environ.get("CI"), reason="no JDK here (scripts/install-system.sh installs one)")


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


def issue(ca, name, force=False):
    reqs = authority.parse_requests([{"name": name, "subject_alt_name": [f"DNS:{name}.example.com"]}], {})
    authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow(), force=force)
    directory = os.path.join(ca, "issued", name)
    return tuple(open(os.path.join(directory, f), "rb").read() for f in ("cert.pem", "key.pem"))


def bundle(ca):
    return open(os.path.join(ca, "ca-bundle.pem"), "rb").read()


def keytool(*args):
    done = subprocess.run([KEYTOOL or "keytool", "-list", "-v", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def service(ca, tmp_path, pair, formats=("haproxy", "pkcs12")):
    return deploy.ServiceFiles("api", str(tmp_path / "api"), *pair, gid=grp.getgrnam("daemon").gr_gid, key_mode=0o640, formats=tuple(formats))


def test_combined_pem_is_the_chain_then_the_key(ca):
    cert, key = issue(ca, "api")
    combined = keystores.combined(key, cert)
    assert combined.startswith(cert.rstrip(b"\n")) and combined.endswith(key)
    assert pki.key_mismatch(pki.load_certificates(combined, "combined")[0], pki.load_private_key(combined, "combined")) is None


@needs_keytool
def test_java_reads_the_truststore_as_trusted_certificates_with_any_password_and_the_same_bundle_gives_the_same_bytes(ca, tmp_path):
    # Two CAs, as a bundle holds during a CA rollover.
    two = bundle(ca) + open(os.path.join(ca, "intermediate-ca.pem"), "rb").read()
    store = tmp_path / "truststore.p12"
    store.write_bytes(keystores.truststore(two))
    assert keystores.truststore(two) == store.read_bytes()
    for password in ("changeit", "anything"):
        listing = keytool("-keystore", str(store), "-storetype", "PKCS12", "-storepass", password)
        assert listing.count("Entry type: trustedCertEntry") == 2, listing
        assert "CN=mtls.fleet root CA" in listing and "CN=mtls.fleet intermediate CA" in listing


@needs_keytool
def test_java_opens_the_keystore_with_its_password_and_finds_the_key_and_chain(ca, tmp_path):
    cert, key = issue(ca, "api")
    store, password = keystores.keystore(key, cert)
    (tmp_path / "keystore.p12").write_bytes(store)
    listing = keytool("-keystore", str(tmp_path / "keystore.p12"), "-storepass", password.decode().strip())
    assert "Entry type: PrivateKeyEntry" in listing and "Certificate chain length: 2" in listing
    assert pki.serial_text(pki.load_certificates(cert, "cert")[0]).lower().lstrip("0") in listing.replace(":", "").lower()
    wrong = subprocess.run([KEYTOOL or "keytool", "-list", "-keystore", str(tmp_path / "keystore.p12"), "-storepass", "not-the-password"],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0


def test_a_keystore_is_kept_while_it_holds_the_same_key_and_chain(ca):
    cert, key = issue(ca, "api")
    store, password = keystores.keystore(key, cert)
    assert keystores.keystore(key, cert, store, password) == (store, password)
    new_cert, new_key = issue(ca, "api", force=True)
    renewed, renewed_password = keystores.keystore(new_key, new_cert, store, password)
    assert renewed != store and renewed_password != password
    assert keystores.keystore(key, cert, store, b"the wrong password\n")[0] != store


def test_the_formats_are_in_the_generation_as_tight_as_the_key_and_a_rerun_writes_nothing(ca, tmp_path):
    pair = issue(ca, "api")
    first = deploy.install([service(ca, tmp_path, pair)], bundle(ca), pki.utcnow())[0]
    assert first["changed"]
    directory = tmp_path / "api"
    modes = {name: stat.S_IMODE(os.stat(directory / name).st_mode) for name in os.listdir(directory)}
    assert modes == {"key.pem": 0o640, "cert.pem": 0o644, "ca-bundle.pem": 0o644, "combined.pem": 0o640, "keystore.p12": 0o640,
                     "keystore.pass": 0o640, "truststore.p12": 0o644}
    assert {os.stat(directory / name).st_gid for name in modes} == {grp.getgrnam("daemon").gr_gid}
    again = deploy.install([service(ca, tmp_path, pair)], bundle(ca), pki.utcnow())[0]
    assert not again["changed"] and again["replaced"] == []


def test_a_rollback_brings_the_stores_back_with_the_pem_files(ca, tmp_path):
    old_pair = issue(ca, "api")
    deploy.install([service(ca, tmp_path, old_pair)], bundle(ca), pki.utcnow())
    old_store = (tmp_path / "api" / "keystore.p12").read_bytes()
    new_pair = issue(ca, "api", force=True)
    deploy.install([service(ca, tmp_path, new_pair)], bundle(ca), pki.utcnow())
    assert (tmp_path / "api" / "keystore.p12").read_bytes() != old_store
    deploy.restore_previous([service(ca, tmp_path, new_pair)], pki.utcnow())
    assert (tmp_path / "api" / "keystore.p12").read_bytes() == old_store
    assert (tmp_path / "api" / "combined.pem").read_bytes() == keystores.combined(old_pair[1], old_pair[0])
