"""Inspection of installed certificates: on the host itself, and from a snapshot read with sh,
stat, cat and openssl (run here for real) and judged elsewhere. Both must say the same."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, certinfo, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
from ansible_collections.mtls.fleet.tests.unit.plugins.module_utils.helpers import DAY, NOW

MARKER = "@@mtls-test"
NAMES = ("good", "other-key", "corrupt", "garbage", "no-key", "no-cert", "renamed", "stranger")


@pytest.fixture(name="host")
def fixture_host(tmp_path):
    """A CA, and a host directory with one service per case in NAMES."""
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), NOW)
    revocation.ensure_crls(ca, CAKeys(), 30 * DAY, pki.RenewBefore.parse("20d"), NOW)
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}.example.com"]} for n in NAMES], {})
    authority.issue(os.path.join(ca, authority.ISSUED), requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), NOW)
    etc = tmp_path / "etc"
    for name in NAMES:
        (etc / name).mkdir(parents=True)
        shutil.copy(os.path.join(ca, authority.ISSUED, name, "cert.pem"), etc / name / "cert.pem")
        shutil.copy(os.path.join(ca, authority.ISSUED, name, "key.pem"), etc / name / "key.pem")
        os.chmod(etc / name / "key.pem", 0o600)
    shutil.copy(etc / "good" / "key.pem", etc / "other-key" / "key.pem")
    (etc / "corrupt" / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    (etc / "garbage" / "cert.pem").write_bytes(bytes(range(256)) + b"\n\n" + MARKER.encode())
    (etc / "no-key" / "key.pem").unlink()
    (etc / "no-cert" / "cert.pem").unlink()
    os.chown(etc / "stranger" / "cert.pem", 4242, 4343)  # no such user or group: reported by number
    shutil.copy(os.path.join(ca, "crl.pem"), etc / "crl.pem")
    shutil.copy(os.path.join(ca, authority.BUNDLE), etc / "ca.pem")
    return etc


def params(etc, names=NAMES):
    entries = [{"name": n, "path": str(etc / n / "cert.pem"), "privatekey_path": str(etc / n / "key.pem"),
                "subject_alt_name": [f"DNS:{'other' if n == 'renamed' else n}.example.com"], "common_name": None, "profile": None, "key_type": None}
               for n in names]
    return {"certificates": entries, "ca_bundle_path": str(etc / "ca.pem"), "crl_path": str(etc / "crl.pem"), "renew_before": "33%"}


def snapshot(wanted):
    paths = certinfo.snapshot_paths(wanted)
    done = subprocess.run(["/bin/sh", "-s"], input=certinfo.snapshot_command(paths, MARKER).encode(), capture_output=True, check=True)
    return done.stdout, certinfo.Snapshot.parse(done.stdout, MARKER, paths)


def test_a_snapshot_judged_elsewhere_says_what_the_host_says(host):
    wanted = params(host)
    output, files = snapshot(wanted)
    on_host, judged = certinfo.report(wanted, NOW + DAY), certinfo.report(wanted, NOW + DAY, files)
    assert judged == on_host
    verdicts = {c["name"]: (c["renew"], c["reason"]) for c in judged["certificates"]}
    assert verdicts == {"good": (False, None), "other-key": (True, "key_mismatch"), "corrupt": (True, "corrupt"), "garbage": (True, "corrupt"),
                        "no-key": (True, "key_mismatch"), "no-cert": (True, "missing"), "renamed": (True, "sans_changed"),
                        "stranger": (False, None)}, verdicts
    stranger = next(c for c in judged["certificates"] if c["name"] == "stranger")
    assert stranger["file"] == {"mode": "0644", "owner": "4242", "group": "4343"} and stranger["privatekey"]["mode"] == "0600"
    assert judged["crl"]["exists"] and judged["crl"]["days_left"] == 29.0
    assert b"PRIVATE KEY" not in output and b"PUBLIC KEY" in output  # only a key's public half leaves the host


@pytest.mark.parametrize("case", ["symlink", "directory", "corrupt key"])
def test_what_a_snapshot_cannot_settle_goes_to_the_host(host, case):
    good = host / "good"
    if case == "symlink":
        os.rename(good / "cert.pem", good / "real.pem")
        os.symlink(good / "real.pem", good / "cert.pem")
    elif case == "directory":
        (good / "key.pem").unlink()
        (good / "key.pem").mkdir()
    else:
        (good / "key.pem").write_bytes((good / "key.pem").read_bytes()[:60])  # cut short
    wanted = params(host, ["good"])
    with pytest.raises(certinfo.Undecided):
        certinfo.report(wanted, NOW, snapshot(wanted)[1])
    assert certinfo.report(wanted, NOW)["certificates"][0]["renew"]  # the host's own reading decides


def test_an_incomplete_or_foreign_output_is_not_a_snapshot(host):
    wanted = params(host, ["good"])
    output = snapshot(wanted)[0]
    paths = certinfo.snapshot_paths(wanted)
    with pytest.raises(certinfo.Undecided, match="incomplete"):
        certinfo.Snapshot.parse(output[:-20], MARKER, paths)
    with pytest.raises(certinfo.Undecided, match="not a snapshot"):
        certinfo.Snapshot.parse(b"\n" + MARKER.encode() + b" 99 file\n\n" + MARKER.encode() + b" end\n", MARKER, paths)
    with pytest.raises(certinfo.Undecided, match="every file"):
        certinfo.Snapshot.parse(b"\n" + MARKER.encode() + b" end\n", MARKER, paths)


def test_the_cas_a_host_relies_on_are_its_roots_and_its_intermediates_each_once_soonest_expiry_first(host):
    cas = certinfo.report(params(host), NOW + DAY)["cas"]
    with open(host / "ca.pem", "rb") as handle:
        root = pki.load_certificates(handle.read(), "ca.pem")[0]
    with open(host / "good" / "cert.pem", "rb") as handle:
        intermediate = pki.load_certificates(handle.read(), "cert.pem")[1]
    assert [(ca["kind"], ca["fingerprint_sha256"]) for ca in cas] == [
        ("intermediate", pki.fingerprint(intermediate)), ("root", pki.fingerprint(root))]  # 8 files share one intermediate
    assert cas[0]["not_after_timestamp"] == int(pki.not_after(intermediate).timestamp()) < cas[1]["not_after_timestamp"]
    assert cas[1]["subject"] == root.subject.rfc4514_string() and cas[1]["days_left"] > 3000
    assert certinfo.report(dict(params(host), ca_bundle_path=None, certificates=[]), NOW)["cas"] == []
