# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One writer at a time on a CA directory. No Ansible imports.

Every module that changes CA state (the CA, issuance, revocation and CRLs, rollover) holds an
exclusive flock on ``<ca>/.lock`` for its whole read-modify-write; a check-mode run takes a
shared lock, so it reads a consistent store and holds writers up only while it reads. The kernel
drops the lock when its process dies (kill -9 included), so a lock is never stale. The holder
writes who it is into the file while it holds it, so a run that gives up waiting can say who.
A writer that gets the lock first removes the temp files a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import time

from .files import FileError, remove_stale_temps

LOCK_FILE = ".lock"


class LockTimeout(FileError):
    """The lock was not free within the timeout; the message names the holder."""


@contextlib.contextmanager
def ca_lock(path: str, holder: str, timeout: float, exclusive: bool = True, clock=time.monotonic, sleep=time.sleep,
            what: str = "the CA directory", fix: str = "raise lock_timeout (mtls_ca_lock_timeout)"):
    """Hold the CA directory's lock while the block runs.

    A directory that does not exist has no state to protect: nothing is locked (the caller that
    creates a CA creates the directory first). ``holder`` names the run in the lock file.
    """
    if not os.path.isdir(path):
        yield
        return
    lock_path = os.path.join(path, LOCK_FILE)
    try:
        fd = os.open(lock_path, (os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:  # a reader before any writer ever ran
        yield
        return
    except OSError as exc:
        raise FileError(f"{lock_path}: {exc.strerror}; it must be a regular file the CA host's user can open") from None
    try:
        _acquire(fd, lock_path, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, timeout, clock, sleep, what, fix)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _describe(holder).encode(), 0)
            remove_stale_temps(path)
        try:
            yield
        finally:
            if exclusive:
                os.ftruncate(fd, 0)  # empty at rest: an idempotent run leaves the CA directory as it was
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd, lock_path, mode, timeout, clock, sleep, what, fix):
    deadline = clock() + timeout
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise FileError(f"{lock_path}: {exc.strerror}") from None
        if clock() >= deadline:
            with open(lock_path, encoding="utf-8", errors="replace") as handle:
                who = handle.read().strip() or "another run"
            raise LockTimeout(
                f"{what} is busy: {who} holds {lock_path}; waited {timeout:g} s. Another run is "
                f"changing it: let it finish and run again, or {fix}"
            )
        sleep(0.05)


def _describe(holder):
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{holder} (pid {os.getpid()} on {socket.gethostname()}, since {since})\n"
