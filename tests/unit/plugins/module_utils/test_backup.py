"""Encrypted CA backup and restore: the same root, serials and revocations come back; a wrong
passphrase, a damaged archive or an occupied directory change nothing. And a CA directory
that lost its CA while the fleet trusts one is never silently replaced by a new root."""

import base64
import datetime
import fcntl
import json
import os
import shutil
import stat

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, backup, locking, module_support, pki, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileError
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


def test_what_the_fleet_trusts_is_read_strictly_from_a_shell_too(ca):
    pem = open(os.path.join(ca, authority.BUNDLE), "rb").read().decode()
    reads = [
        {"item": "web-1", "rc": 0, "stdout": pem.replace("\n", "\r\n"), "stderr": "Shared connection to web-1 closed.\r\n"},  # ssh's terminal
        {"item": "web-2", "rc": 0, "stdout": "", "stderr": ""},  # no bundle: trusts nothing yet
        {"item": "web-3", "unreachable": True, "msg": "Failed to connect"},
    ]
    roots = authority.fleet_roots(reads)
    assert list(roots) == ["web-1", "web-3"] and [pki.common_name_of(c) for c in roots["web-1"]] == ["mtls.fleet root CA"]
    unreadable = {"item": "web-5", "rc": 1, "stdout": "", "stderr": "cat: /etc/mtls/web/ca-bundle.pem: Permission denied\n"}
    with pytest.raises(pki.PKIError, match=r"cannot tell which root web-5 trusts \(cat: .*Permission denied\).*become: true"):
        authority.fleet_roots([*reads, unreadable])
    garbled = {"item": "web-6", "rc": 0, "stdout": "-----BEGIN CERTIFICATE-----\r\nnot base64\r\n-----END CERTIFICATE-----\r\n"}
    with pytest.raises(pki.PKIError, match="web-6's ca-bundle.pem holds a corrupt certificate"):
        authority.fleet_roots([*reads, garbled])


def seal_as_0_4(plaintext, passphrase):
    """An archive as mtls.fleet 0.4 wrote it: v1 header, scrypt n=2^15, r=8, p=1."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    salt, nonce = os.urandom(16), os.urandom(12)
    header = b"mtls.fleet CA backup v1\n" + salt + nonce
    key = Scrypt(salt=salt, length=32, n=2 ** 15, r=8, p=1).derive(passphrase.encode())
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def test_archives_use_scrypt_n_2_17_named_in_the_authenticated_header_and_0_4_archives_still_open(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    sealed = open(archive, "rb").read()
    assert sealed.startswith(b"mtls.fleet CA backup v2 scrypt n=131072 r=8 p=1\n")
    weakened = sealed.replace(b"n=131072", b"n=032768", 1)  # same length: only the authentication can tell
    with open(archive, "wb") as handle:
        handle.write(weakened)
    with pytest.raises(backup.BackupError, match="cannot be decrypted: the passphrase is wrong or the file was damaged"):
        backup.restore(str(tmp_path / "restored"), archive, PASSPHRASE)
    with open(archive, "wb") as handle:
        handle.write(sealed.replace(b"n=131072 r=8", b"n=16777216 r=8", 1))
    with pytest.raises(backup.BackupError, match="asks for scrypt parameters .* this collection does not use"):
        backup.restore(str(tmp_path / "restored"), archive, PASSPHRASE)

    files = backup._read_tree(ca)  # pylint: disable=protected-access
    with open(archive, "wb") as handle:
        handle.write(seal_as_0_4(json.dumps({"files": files}).encode(), PASSPHRASE))
    changed, _summary = backup.restore(str(tmp_path / "restored"), archive, PASSPHRASE)
    assert changed and tree(str(tmp_path / "restored")) == tree(ca)


def test_a_restore_makes_every_directory_0700_whatever_the_umask(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    shutil.rmtree(ca)
    old = os.umask(0o022)
    try:
        backup.restore(ca, archive, PASSPHRASE)
    finally:
        os.umask(old)
    modes = {os.path.relpath(top, ca): stat.S_IMODE(os.stat(top).st_mode) for top, _dirs, _files in os.walk(ca)}
    assert "issued" in modes and set(modes.values()) == {0o700}, modes


def test_what_a_killed_restore_left_beside_the_ca_is_removed(ca, tmp_path):
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    shutil.rmtree(ca)
    killed = tmp_path / ".ca.restore-0123456789ab"  # the decrypted CA, written before the rename
    killed.mkdir(mode=0o700)
    (killed / "root-ca-key.pem").write_bytes(b"the CA's key")
    other = tmp_path / ".other.restore-0123456789ab"  # another CA directory's: not ours to touch
    other.mkdir()
    backup.restore(ca, archive, PASSPHRASE)
    assert not killed.exists() and other.exists()
    killed.mkdir(mode=0o700)
    backup.backup(ca, archive, PASSPHRASE)
    assert not killed.exists()


def test_the_restored_directory_is_locked_before_it_moves_into_place(ca, tmp_path, monkeypatch):
    """A run that opens <ca>/.lock right after the rename must wait for the restore."""
    archive = str(tmp_path / "ca.enc")
    backup.backup(ca, archive, PASSPHRASE)
    shutil.rmtree(ca)
    os.mkdir(ca, 0o700)
    seen, rename = [], os.rename

    def rename_then_try_the_lock(source, target):
        rename(source, target)
        fd = os.open(os.path.join(target, ".lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("free")
        except BlockingIOError:
            seen.append("held")
        finally:
            os.close(fd)
    monkeypatch.setattr(backup.os, "rename", rename_then_try_the_lock)
    with locking.ca_lock(ca, backup.RESTORER, 1):
        backup.restore(ca, archive, PASSPHRASE)
    assert seen == ["held"]


def test_a_symlinked_ca_path_is_refused(ca, tmp_path):
    link = str(tmp_path / "link")
    os.symlink(ca, link)
    with pytest.raises(FileError, match=r"link is a symlink \(to .*ca\); give the directory itself as the CA path"):
        with module_support.ca_directory_lock(link, "test", 1, exclusive=True):
            pass
    assert not os.path.exists(os.path.join(ca, ".lock"))
