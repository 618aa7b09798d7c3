# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted backup and restore of a CA directory. No Ansible imports.

The archive is every file of the CA directory (keys, certificates, the store of issued
certificates, revocations, CRLs, rollover state) with its mode, as JSON, encrypted with
AES-256-GCM under a key derived from a passphrase with scrypt. The header, which names the scrypt
parameters, is authenticated too, so a wrong passphrase, a truncated file or a changed byte is
refused before anything is written. A restore brings back the same root, serials and
revocations, into a directory that holds no CA.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import stat

from . import authority, locking, pki, revocation
from .files import FileBatch, FileError, fsync_directory, read_file, require_safe_directory, set_owner_mode

MAGIC_V1 = b"mtls.fleet CA backup v1\n"  # 0.4: scrypt n=2^15, r=8, p=1
MAGIC = b"mtls.fleet CA backup v2 scrypt"  # then " n=<N> r=<r> p=<p>\n", salt and nonce: all authenticated
ARCHIVE_MODE = 0o600
RESTORER = "mtls.fleet.ca_backup (restore)"
_SALT, _NONCE = 16, 12
_SCRYPT = dict(n=2 ** 17, r=8, p=1)
_SCRYPT_V1 = dict(n=2 ** 15, r=8, p=1)
_SCRYPT_MAX = dict(n=2 ** 18, r=8, p=2)  # an archive may not make a restore spend more (scrypt's memory is 128 * n * r bytes)
_PARAMETERS = re.compile(rb" n=([0-9]{1,8}) r=([0-9]{1,3}) p=([0-9]{1,3})\n")
_SKIPPED = {".lock"}  # held by whoever runs; never part of the state
_RESTORE_TEMP = re.compile(r"\.(?P<name>.+)\.restore-[0-9a-f]{12}\Z")


class BackupError(FileError):
    """The archive cannot be read or restored; the message says why and what to do."""


def backup(ca_path: str, archive: str, passphrase: str, check_mode=False) -> dict:
    """Write the encrypted archive of ca_path; returns a summary (never key material)."""
    _require_passphrase(passphrase)
    if not authority.ca_exists(ca_path):
        raise BackupError(f"{ca_path} holds no CA ({authority.ROOT_CERT}); there is nothing to back up")
    if not check_mode:
        remove_killed_restores(ca_path)
    files = _read_tree(ca_path)
    summary = _summary(files)
    if not check_mode:
        require_safe_directory(os.path.dirname(os.path.abspath(archive)))
        batch = FileBatch(keep_previous=False)
        batch.add(archive, _seal(json.dumps({"files": files}).encode(), passphrase), ARCHIVE_MODE)
        batch.commit()
    return summary


def restore(ca_path: str, archive: str, passphrase: str, check_mode=False) -> tuple:
    """Restore ca_path from archive; returns (changed, summary).

    Refused when ca_path holds a CA other than the archive's state (move it away first, so a
    restore never overwrites a CA by mistake). Unchanged when it already holds exactly that state.
    """
    _require_passphrase(passphrase)
    sealed = read_file(archive)
    if sealed is None:
        raise BackupError(f"{archive} does not exist; give the path of an archive made by mtls.fleet.ca_backup")
    files = json.loads(_open(sealed, passphrase, archive))["files"]
    summary = _summary(files)
    if authority.ca_exists(ca_path):
        if _read_tree(ca_path) == files:
            return False, summary
        raise BackupError(
            f"{ca_path} already holds a CA ({_root_description(ca_path)}), not the state in {archive}; a restore never "
            f"replaces a CA. If it really is to be replaced, move {ca_path} away first and run again"
        )
    leftovers = sorted(set(_names(ca_path)) - _SKIPPED)
    if leftovers:
        raise BackupError(f"{ca_path} holds no CA but is not empty ({', '.join(leftovers[:5])}); move it away first")
    if not check_mode:
        remove_killed_restores(ca_path)
        _write_tree(ca_path, files)
    return True, summary


def remove_killed_restores(ca_path: str) -> list:
    """A restore killed before its rename leaves the decrypted CA beside ca_path
    (.<name>.restore-<hex>): remove it. Returns what was removed."""
    parent, name = os.path.split(os.path.abspath(ca_path))
    removed = []
    for entry in _names(parent):
        found = _RESTORE_TEMP.fullmatch(entry)
        if found and found.group("name") == name:
            shutil.rmtree(os.path.join(parent, entry))
            removed.append(entry)
    return removed


def _require_passphrase(passphrase):
    if not passphrase or len(passphrase) < 12:
        raise BackupError("the backup passphrase must have at least 12 characters; keep it in Ansible Vault, apart from the archive")


def _read_tree(root: str) -> dict:
    """Every regular file (content and mode) and symlink (a generation link) under root."""
    files = {}
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names + subdirs):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                files[relative] = {"link": os.readlink(path)}
            elif stat.S_ISREG(st.st_mode) and relative not in _SKIPPED:
                files[relative] = {"mode": stat.S_IMODE(st.st_mode), "content": base64.b64encode(read_file(path)).decode()}
    return files


def _write_tree(ca_path: str, files: dict) -> None:
    """Write the whole tree beside ca_path, synced, then move it into place in one rename."""
    parent = os.path.dirname(os.path.abspath(ca_path))
    require_safe_directory(parent)
    temp = os.path.join(parent, f".{os.path.basename(ca_path)}.restore-{secrets.token_hex(6)}")
    try:
        os.mkdir(temp, authority.DIRECTORY_MODE)
        set_owner_mode(temp, authority.DIRECTORY_MODE)
        batch, links = FileBatch(keep_previous=False), []
        for relative, entry in sorted(files.items()):
            target = os.path.normpath(os.path.join(temp, relative))
            if os.path.isabs(relative) or not target.startswith(temp + os.sep):
                raise BackupError(f"the archive names {relative!r}, outside the CA directory; refusing it")
            _make_directories(temp, os.path.dirname(target))
            if "link" in entry:
                if os.path.basename(entry["link"]) != entry["link"] or entry["link"] in (".", ".."):
                    raise BackupError(f"the archive links {relative!r} to {entry['link']!r}, outside its directory; refusing it")
                links.append((entry["link"], target))
            else:
                batch.add(target, base64.b64decode(entry["content"]), entry["mode"] & 0o777)
        batch.commit()
        for link, target in links:
            os.symlink(link, target)
        # The restored directory's lock is taken before it moves into place: a run that opens
        # <ca>/.lock after the rename waits for this restore, which still holds the old one.
        with locking.ca_lock(temp, RESTORER, 0):
            if os.path.isdir(ca_path):  # empty but for a lock file: rename replaces an empty directory
                for name in _names(ca_path):
                    os.unlink(os.path.join(ca_path, name))
            os.rename(temp, ca_path)
            fsync_directory(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _make_directories(top, directory):
    """Every level below top that is missing, 0700 (the CA directory's mode), whatever the umask."""
    if directory == top or os.path.isdir(directory):
        return
    _make_directories(top, os.path.dirname(directory))
    os.mkdir(directory, authority.DIRECTORY_MODE)
    set_owner_mode(directory, authority.DIRECTORY_MODE)


def _names(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _summary(files: dict) -> dict:
    root_pem = files.get(authority.ROOT_CERT)
    root = pki.load_certificates(base64.b64decode(root_pem["content"]), authority.ROOT_CERT)[0] if root_pem else None
    revoked = files.get(revocation.REVOKED_FILE)
    return {
        "root": pki.common_name_of(root) if root else None,
        "root_fingerprint": pki.fingerprint(root) if root else None,
        "files": len(files),
        "certificates": sum(1 for name, entry in files.items() if _is_issued_certificate(name.split(os.sep), entry)),
        "revocations": len(json.loads(base64.b64decode(revoked["content"]))) if revoked else 0,
    }


def _is_issued_certificate(parts, entry) -> bool:
    """issued/<name> (a generation link), or issued/<name>/cert.pem in a store of 0.2."""
    if parts[0] != authority.ISSUED or parts[1].startswith("."):
        return False
    return (len(parts) == 2 and "link" in entry) or parts[2:] == [authority.CERT_FILE]


def _root_description(ca_path):
    root = pki.load_certificates(read_file(os.path.join(ca_path, authority.ROOT_CERT)), authority.ROOT_CERT)[0]
    return f"root '{pki.common_name_of(root)}', SHA-256 {pki.fingerprint(root)}"


def _key(passphrase: str, salt: bytes, scrypt: dict) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    return Scrypt(salt=salt, length=32, **scrypt).derive(passphrase.encode())


def _seal(plaintext: bytes, passphrase: str, scrypt=None) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    scrypt = scrypt or _SCRYPT
    salt, nonce = secrets.token_bytes(_SALT), secrets.token_bytes(_NONCE)
    header = MAGIC + b" n=%d r=%d p=%d\n" % (scrypt["n"], scrypt["r"], scrypt["p"]) + salt + nonce
    return header + AESGCM(_key(passphrase, salt, scrypt)).encrypt(nonce, plaintext, header)


def _parameters(sealed: bytes, archive: str) -> tuple:
    """(scrypt parameters, where the salt starts) from the archive's header, v2 or 0.4's v1."""
    if sealed.startswith(MAGIC_V1):
        return _SCRYPT_V1, len(MAGIC_V1)
    found = _PARAMETERS.match(sealed, len(MAGIC)) if sealed.startswith(MAGIC) else None
    if not found:
        raise BackupError(f"{archive} is not an archive made by mtls.fleet.ca_backup")
    scrypt = dict(n=int(found.group(1)), r=int(found.group(2)), p=int(found.group(3)))
    if any(scrypt[k] > _SCRYPT_MAX[k] for k in scrypt) or scrypt["n"] < 2 or scrypt["n"] & (scrypt["n"] - 1) or not scrypt["r"] or not scrypt["p"]:
        raise BackupError(f"{archive} asks for scrypt parameters {scrypt} this collection does not use; refusing to derive its key")
    return scrypt, found.end()


def _open(sealed: bytes, passphrase: str, archive: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    scrypt, start = _parameters(sealed, archive)
    salt = sealed[start:start + _SALT]
    header = sealed[:start + _SALT + _NONCE]
    nonce = header[-_NONCE:]
    try:
        return AESGCM(_key(passphrase, salt, scrypt)).decrypt(nonce, sealed[len(header):], header)
    except InvalidTag:
        raise BackupError(f"{archive} cannot be decrypted: the passphrase is wrong or the file was damaged; nothing was changed") from None
