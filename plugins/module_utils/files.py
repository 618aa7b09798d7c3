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
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor

PREVIOUS_SUFFIX = ".previous"
# Concurrent fsyncs share journal commits: 2,000 durable writes take ~0.15 s instead of ~0.7 s.
_WRITERS = 16


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
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def ensure_directory(path: str, mode: int, uid: int = -1, gid: int = -1, check_mode: bool = False) -> bool:
    """Create path (and parents) with mode and owner, or fix an existing one. Returns changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check_mode:
            os.makedirs(path, mode=mode)
            os.chown(path, uid, gid)
            os.chmod(path, mode)  # makedirs applies the umask
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} exists and is not a directory")
    if stat.S_IMODE(st.st_mode) == mode and uid in (-1, st.st_uid) and gid in (-1, st.st_gid):
        return False
    if not check_mode:
        os.chown(path, uid, gid, follow_symlinks=False)
        os.chmod(path, mode)
    return True


class FileBatch:
    """Stage many writes, then commit them together: temps first, renames last.

    Staging compares against what is on disk, so ``changes`` tells check mode what a commit
    would do. Files are committed in the order they were added (add keys before certs).
    """

    def __init__(self, keep_previous: bool = True):
        self._staged: list[tuple[str, bytes | None, int, int, int]] = []
        self._keep_previous = keep_previous

    def add(self, path: str, content: bytes, mode: int, uid: int = -1, gid: int = -1, rewrite: bool = False) -> bool:
        """Stage path (uid/gid -1: leave as created); True if committing would change it.

        rewrite: write it even when the content is the same, so that its *.previous is the file
        as it is now (files that make one generation together are replaced together).
        Its directory must exist by commit time. Each path is staged at most once per batch.
        """
        current = read_file(path)
        if current == content and not rewrite:
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
        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            futures = {staged[0]: pool.submit(_write_temp, *staged) for staged in self._staged if staged[1] is not None}
        temps = {path: future.result() for path, future in futures.items() if future.exception() is None}
        try:
            for future in futures.values():
                if future.exception() is not None:
                    raise future.exception()
            for path, content, mode, uid, gid in self._staged:
                if content is None:
                    os.chown(path, uid, gid, follow_symlinks=False)
                    os.chmod(path, mode)
                    continue
                if self._keep_previous:
                    _keep_previous(path)
                os.replace(temps.pop(path), path)
        except OSError as exc:
            raise FileError(f"{exc.filename or 'file'}: {exc.strerror}") from None
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
    finally:
        os.close(fd)
    return temp


def _keep_previous(path: str) -> None:
    if not os.path.isfile(path) or os.path.islink(path):
        return
    link = f"{path}{PREVIOUS_SUFFIX}.{secrets.token_hex(6)}.tmp"
    os.link(path, link)
    os.replace(link, path + PREVIOUS_SUFFIX)
