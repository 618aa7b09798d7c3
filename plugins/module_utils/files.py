# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic, symlink-safe file writes that keep the previous generation beside the new one.

A file is replaced by writing a temp file in the same directory (created with its final mode,
never following links), syncing it, and renaming it over the old one. The old content stays
as ``<name>.previous`` (a hard link made before the rename, so there is no moment without a
file) for a later rollback.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor

PREVIOUS_SUFFIX = ".previous"
# Concurrent fsyncs share journal commits: 2,000 durable writes take ~0.15 s instead of ~0.7 s.
_WRITERS = 16


_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp\Z|.+\.previous\.[0-9a-f]{12}\.tmp\Z")


class FileError(Exception):
    """A file could not be read or written safely; the message names the path."""


def read_file(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist. Refuses to follow a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(f"{path} is a symlink; refusing to follow it (replace it with a regular file)") from None
        raise FileError(f"{path}: {exc.strerror}") from None
    try:
        handle = os.fdopen(fd, "rb")
    except OSError as exc:  # a directory
        os.close(fd)
        raise FileError(f"{path}: {exc.strerror}") from None
    with handle:
        return handle.read()


def ensure_directory(path: str, mode: int, uid: int = -1, gid: int = -1, check_mode: bool = False) -> bool:
    """Create path with mode and owner (its parent must be safe), or fix an existing one.

    An existing directory that is a symlink, is owned by someone else, or is writable by more
    than mode allows is refused with the fix: whoever could write there could already have
    swapped what it holds, so tightening it now would hide that. Returns changed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        require_safe_directory(os.path.dirname(path) or ".", check_mode=check_mode)
        if not check_mode:
            os.mkdir(path, mode)
            set_owner_mode(path, mode, uid, gid)  # mkdir applies the umask
        return True
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} exists and is not a directory (a symlink is not followed); move it away")
    _refuse_unsafe(path, st, allowed_mode=mode, owners=(0, os.geteuid(), uid))
    if stat.S_IMODE(st.st_mode) == mode and uid in (-1, st.st_uid) and gid in (-1, st.st_gid):
        return False
    if not check_mode:
        set_owner_mode(path, mode, uid, gid)
    return True


def require_safe_directory(path: str, create_mode: int = 0o755, check_mode: bool = False) -> None:
    """A directory that holds what this collection installs but is not its own (/etc/mtls, the
    CRL's directory): created root-owned when missing, never loosened or chowned; an existing
    one must be owned by root (or the user running) and not writable by group or others."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        require_safe_directory(os.path.dirname(path) or ".", check_mode=check_mode)
        if not check_mode:
            os.mkdir(path, create_mode)
            set_owner_mode(path, create_mode)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} exists and is not a directory; move it away")
    _refuse_unsafe(path, st, allowed_mode=0o755, owners=(0, os.geteuid()))


def refuse_unsafe_directory(path: str, allowed_mode: int) -> None:
    """An existing directory (a CA's) must be owned by root or the user running and writable by
    no one else than mode allows; a missing one is fine. A symlink is refused: every later step
    (the lock, the clean-up of temp files, each write) would follow it again, wherever it then
    points."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise FileError(f"{path} is a symlink (to {os.readlink(path)}); give the directory itself as the CA path "
                        "(mtls_ca_path): a link could be pointed elsewhere between two steps")
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} exists and is not a directory; move it away")
    _refuse_unsafe(path, st, allowed_mode, owners=(0, os.geteuid()))


def _refuse_unsafe(path, st, allowed_mode, owners):
    if st.st_uid not in owners:
        raise FileError(f"{path} is owned by uid {st.st_uid}, not root: its owner could replace what is installed there. "
                        f"Check it was not tampered with, then run: chown root {path}")
    loose = stat.S_IMODE(st.st_mode) & 0o022 & ~allowed_mode
    if loose:
        who = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others")) if loose & bit)
        raise FileError(f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}): they could replace what is installed there. "
                        f"Check it was not tampered with, then run: chmod go-w {path}")


def set_owner_mode(path: str, mode: int, uid: int = -1, gid: int = -1) -> None:
    """chown and chmod path itself; a symlink is refused, never followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(f"{path} is a symlink; refusing to follow it (replace it with a regular file)") from None
        raise
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after chown, which may clear set-id bits
    finally:
        os.close(fd)


def remove_stale_temps(root: str) -> int:
    """Remove the temp files a killed writer left under root (they may hold a private key).

    Only safe while holding the lock that every writer of root holds. Returns how many.
    """
    removed = 0
    for directory, _subdirs, names in os.walk(root):
        for name in names:
            if _TEMP_NAME.match(name):
                os.unlink(os.path.join(directory, name))
                removed += 1
    return removed


def fsync_directory(path: str) -> None:
    """Make the names in path durable (a rename is only on disk once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        raise FileError(f"{path}: syncing the directory failed ({exc.strerror}); what was renamed there may not survive a crash. "
                        "Check the disk, then run again") from None
    finally:
        os.close(fd)


class FileBatch:
    """Stage many writes, then commit them together: temps first, renames last.

    Staging compares against what is on disk, so ``changes`` tells check mode what a commit
    would do. Files are committed in the order they were added (add keys before certs).
    """

    def __init__(self, keep_previous: bool = True, writers: int = _WRITERS):
        self._staged: list[tuple[str, bytes | None, int, int, int]] = []
        self._keep_previous = keep_previous
        self._writers = writers  # 1: the caller already writes many batches at once

    def add(self, path: str, content: bytes, mode: int, uid: int = -1, gid: int = -1) -> bool:
        """Stage path (uid/gid -1: leave as created); True if committing would change it.

        Its directory must exist by commit time. Each path is staged at most once per batch.
        """
        current = read_file(path)
        if current == content:
            st = os.lstat(path)
            if stat.S_IMODE(st.st_mode) == mode and uid in (-1, st.st_uid) and gid in (-1, st.st_gid):
                return False
            self._staged.append((path, None, mode, uid, gid))  # mode or ownership only
        else:
            self._staged.append((path, content, mode, uid, gid))
        return True

    @property
    def changes(self) -> list[str]:
        return [staged[0] for staged in self._staged]

    def commit(self) -> None:
        """Write and sync every temp file, then rename them into place in the order added.

        If any temp file cannot be written, nothing is renamed and every temp file is removed.
        """
        with ThreadPoolExecutor(max_workers=self._writers) as pool:
            futures = {staged[0]: pool.submit(_write_temp, *staged) for staged in self._staged if staged[1] is not None}
        temps = {path: future.result() for path, future in futures.items() if future.exception() is None}
        try:
            for future in futures.values():
                if future.exception() is not None:
                    raise future.exception()
            for path, content, mode, uid, gid in self._staged:
                if content is None:
                    set_owner_mode(path, mode, uid, gid)
                    continue
                if self._keep_previous:
                    _keep_previous(path)
                os.replace(temps[path], path)
                del temps[path]  # only once it is in place: a temp that did not move is removed below
            for directory in sorted({os.path.dirname(staged[0]) or "." for staged in self._staged}):
                fsync_directory(directory)
        except OSError as exc:
            raise FileError(f"{exc.filename2 or exc.filename or 'a file of the batch'}: {exc.strerror}") from None
        finally:
            for temp in temps.values():
                if os.path.lexists(temp):
                    os.unlink(temp)
        self._staged = []


def _write_temp(path: str, content: bytes, mode: int, uid: int = -1, gid: int = -1) -> str:
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileError(f"directory {directory} does not exist; create it (with the owner and mode it needs) first")
    temp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # the umask may have narrowed it; chown may have cleared set-id bits
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.unlink(temp)  # it may hold part of a private key
        raise FileError(f"{path}: writing it failed ({exc.strerror}); nothing was changed. Check the disk, then run again") from None
    except BaseException:
        os.unlink(temp)
        raise
    finally:
        os.close(fd)
    return temp


def _keep_previous(path: str) -> None:
    if not os.path.isfile(path) or os.path.islink(path):
        return
    link = f"{path}{PREVIOUS_SUFFIX}.{secrets.token_hex(6)}.tmp"
    os.link(path, link)
    os.replace(link, path + PREVIOUS_SUFFIX)
