"""Encrypted CA backup and restore: the same root, serials and revocations come back; a wrong
passphrase, a damaged archive or an occupied directory change nothing. And a CA directory
that lost its CA while the fleet trusts one is never silently replaced by a new root."""

import base64
import datetime
import os
import shutil

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, backup, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}"]} for n in ("web", "api")], {})
    authority.issue(os.path.join(path, "issued"), requests, authority.load_issuer(path, CAKeys()), pki.Policy(), pki.utcnow())
    revocation.revoke(path, [revocation.RevokeRequest.parse({"name": "api"}, 0)], CAKeys(), pki.utcnow())
    revocation.ensure_crls(path, CAKeys(), datetime.timedelta(days=30), pki.RenewBefore.parse("20d"), pki.utcnow())
    return path


def tree(path):
    """Every file with its content and mode, and every symlink with its target."""
    found = {}
    for directory, subdirs, names in os.walk(path):
        for name in names + subdirs:
            full = os.path.join(directory, name)
            if os.path.islink(full):
                found[os.path.relpath(full, path)] = ("link", os.readlink(full))
            elif os.path.isfile(full) and name != ".lock":
                found[os.path.relpath(full, path)] = (open(full, "rb").read(), os.stat(full).st_mode)
    return found


def test_backup_then_restore_brings_back_the_same_root_serials_and_revocations(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    summary = backup.backup(ca, archive, PASSPHRASE)
    assert summary["certificates"] == 2 and summary["revocations"] == 1 and summary["root"] == "mtls.fleet root CA"
    assert os.stat(archive).st_mode & 0o777 == 0o600
    sealed = open(archive, "rb").read()
    assert b"PRIVATE KEY" not in sealed and b"mtls.fleet root CA" not in sealed  # encrypted, not just encoded
    before = tree(ca)
    assert before["issued/web"] == ("link", ".web.gen1")  # the store's generation links come back too
    shutil.rmtree(ca)
    changed, restored = backup.restore(ca, archive, PASSPHRASE)
    assert changed and restored == summary and tree(ca) == before
    assert os.stat(ca).st_mode & 0o777 == 0o700
    assert backup.restore(ca, archive, PASSPHRASE)[0] is False  # idempotent
    assert [e["name"] for e in revocation.read_revocations(ca)] == ["api"]
    assert authority.load_issuer(ca, CAKeys()).cert.serial_number  # the restored CA signs again
    assert open(os.path.join(ca, "issued", "web", "cert.pem"), "rb").read() == before["issued/.web.gen1/cert.pem"][0]


def test_a_restore_into_the_empty_directory_a_lost_disk_leaves(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    before = tree(ca)
    shutil.rmtree(ca)
    os.mkdir(ca, 0o700)
    open(os.path.join(ca, ".lock"), "w").close()
    assert backup.restore(ca, archive, PASSPHRASE)[0] and tree(ca) == before


@pytest.mark.parametrize("passphrase, damage, message", [
    ("the wrong passphrase", lambda sealed: sealed, "passphrase is wrong or the file was damaged"),
    (PASSPHRASE, lambda sealed: sealed[:-1] + bytes([sealed[-1] ^ 1]), "passphrase is wrong or the file was damaged"),
    (PASSPHRASE, lambda sealed: b"not an archive", "not an archive made by mtls.fleet.ca_backup"),
])
def test_a_wrong_passphrase_or_a_damaged_archive_changes_nothing(ca, tmp_path, passphrase, damage, message):
    archive = tmp_path / "ca.enc"
    backup.backup(ca, str(archive), PASSPHRASE)
    archive.write_bytes(damage(archive.read_bytes()))
    shutil.rmtree(ca)
    with pytest.raises(backup.BackupError, match=message):
        backup.restore(ca, str(archive), passphrase)
    assert not os.path.exists(ca) and sorted(os.listdir(tmp_path)) == ["ca.enc"]


def test_a_restore_never_replaces_another_ca(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    other = str(tmp_path / "other")
    authority.ensure_ca(other, authority.CASpec(common_name="Other root"), CAKeys(), pki.utcnow())
    before = tree(other)
    with pytest.raises(backup.BackupError, match="already holds a CA .*'Other root'.* a restore never replaces a CA"):
        backup.restore(other, archive, PASSPHRASE)
    assert tree(other) == before


def test_a_short_passphrase_is_refused(ca, tmp_path):
    with pytest.raises(backup.BackupError, match="at least 12 characters"):
        backup.backup(ca, str(tmp_path / "ca.enc"), "short")
    assert not (tmp_path / "ca.enc").exists()


def test_a_lost_ca_is_not_silently_replaced_while_hosts_trust_it(ca, tmp_path):
    root = pki.load_certificates(open(os.path.join(ca, authority.ROOT_CERT), "rb").read(), "root")[0]
    fleet = {"web-1": [root], "web-2": [root], "db-1": []}
    shutil.rmtree(ca)
    with pytest.raises(pki.PKIError, match=r"holds no CA, but web-1, web-2 already trust 'mtls.fleet root CA' \(SHA-256 .*"
                                           r"Restore the CA directory from its backup .*mtls_ca_new_root=true"):
        authority.refuse_silent_new_root(ca, fleet, new_root=False)
    authority.refuse_silent_new_root(ca, {"web-1": []}, new_root=False)  # a new fleet: nothing trusted yet
    authority.refuse_silent_new_root(ca, fleet, new_root=True)


def test_a_lost_ca_is_not_replaced_while_a_host_that_may_trust_it_is_unreachable(ca):
    shutil.rmtree(ca)
    with pytest.raises(pki.PKIError, match=r"holds no CA, and which root db-1, web-2 trust is unknown: they could not be reached.*"
                                           r"mtls.fleet.ca_restore.*new fleet whose hosts trust no root yet, set mtls_ca_new_root=true"):
        authority.refuse_silent_new_root(ca, {"web-1": [], "web-2": None, "db-1": None}, new_root=False)
    authority.refuse_silent_new_root(ca, {"web-1": [], "web-2": None}, new_root=True)


def test_a_deliberate_new_root_keeps_trusting_the_old_one(ca, tmp_path):
    old_root = pki.load_certificates(open(os.path.join(ca, authority.ROOT_CERT), "rb").read(), "root")[0]
    shutil.rmtree(ca)
    result = authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow(), keep_trusting=[old_root, old_root])
    bundle = pki.load_certificates(open(os.path.join(ca, authority.BUNDLE), "rb").read(), "bundle")
    assert [pki.fingerprint(c) for c in bundle] == [pki.fingerprint(old_root), pki.fingerprint(result.root)]
    assert "keeps trusting them" in result.warnings[0]


def test_what_the_fleet_trusts_is_read_strictly(ca):
    pem = open(os.path.join(ca, authority.BUNDLE), "rb").read()
    reads = [
        {"item": "web-1", "content": base64.b64encode(pem).decode()},
        {"item": "web-2", "failed": False, "msg": "File not found: /etc/mtls/web/ca-bundle.pem"},  # trusts nothing yet
        {"item": "web-6", "failed": False, "msg": "file not found: /etc/mtls/web/ca-bundle.pem"},  # the same, in ansible-core 2.16
        {"item": "web-3", "unreachable": True},
        {"item": "web-4", "skipped": True},
    ]
    roots = authority.fleet_roots(reads)
    assert list(roots) == ["web-1", "web-3"] and [pki.common_name_of(c) for c in roots["web-1"]] == ["mtls.fleet root CA"]
    assert roots["web-3"] is None  # unreachable: unknown, not "trusts nothing"
    unreadable = {"item": "web-5", "failed": False, "msg": "File is not readable: /etc/mtls/web/ca-bundle.pem"}
    with pytest.raises(pki.PKIError, match=r"cannot tell which root web-5 trusts \(File is not readable.*become: true"):
        authority.fleet_roots([*reads, unreadable])
