# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory of files that belong together (a key and its certificate), switched as a whole.
No Ansible imports.

``<parent>/<name>`` is a symlink to ``.<name>.gen<N>`` (relative, so the tree can move). A new
generation is written and synced in full beside the one in use, then the symlink is replaced in
one rename, so a reader (or a crash) sees the old files or the new ones, never a new key with an
old certificate. The generation it replaced stays, named by the ``.<name>.previous`` link, for a
rollback, which is the same one rename back. A real directory at ``<parent>/<name>`` was laid out
by mtls.fleet 0.2; it becomes the previous generation at its next change. Used for a host's
services (deploy) and for the CA's store of issued certificates (authority).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import stat

from .files import FileBatch, FileError, ensure_directory, fsync_directory, read_file, set_owner_mode

_GENERATION = re.compile(r"\.(?P<name>.+)\.gen(?P<number>\d+)\Z")
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(tmp|link)-[0-9a-f]{12}\Z")
_RENAME_EXCHANGE = 2


class Generations:
    def __init__(self, path: str, mode: int, uid: int = -1):
        self.path = path.rstrip("/")
        self.parent, self.name = os.path.split(self.path)
        self.parent = self.parent or "."
        self.mode, self.uid = mode, uid

    def current(self) -> str | None:
        """The directory in use, or None."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return self.path
        if not stat.S_ISLNK(st.st_mode):
            raise FileError(f"{self.path} exists and is neither a directory nor a generation link; move it away")
        target = os.readlink(self.path)
        if self._number(target) is None:
            raise FileError(f"{self.path} links to {target!r}, which is not one of its generations (.{self.name}.gen<N>); "
                            "move it away and run again")
        return os.path.join(self.parent, target)

    def previous(self) -> str | None:
        """The generation in use before the current one, if it is still there."""
        try:
            target = os.readlink(self._previous_link)
        except (FileNotFoundError, OSError):
            return None
        path = os.path.join(self.parent, target)
        return path if self._number(target) is not None and os.path.isdir(path) and path != self.current() else None

    def read(self, name: str) -> bytes | None:
        current = self.current()
        return read_file(os.path.join(current, name)) if current else None

    def write(self, files: dict, gid: int = -1) -> str:
        """Write files ({name: (content, mode)}) into a new generation, synced; returns its path.
        Nothing refers to it until switch_to; on any error it is removed."""
        current = self.current()
        number = 2 if current == self.path else (self._number(os.path.basename(current)) or 0) + 1 if current else 1
        generation = os.path.join(self.parent, f".{self.name}.gen{number}")
        temp = os.path.join(self.parent, f".{self.name}.tmp-{secrets.token_hex(6)}")
        try:
            os.mkdir(temp, self.mode)
            set_owner_mode(temp, self.mode, self.uid, gid)
            batch = FileBatch(keep_previous=False, writers=1)  # a generation is a few files; callers write many at once
            for name, (content, mode) in files.items():  # in the order given: a key before what names it
                batch.add(os.path.join(temp, name), content, mode, self.uid, gid)
            batch.commit()
            if os.path.lexists(generation):  # left by a run killed before its switch: never in use
                shutil.rmtree(generation)
            os.rename(temp, generation)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return generation

    def switch_to(self, generation: str, sync: bool = True) -> None:
        """Use generation: one rename of the link, made durable (sync=False: the caller syncs the
        parent once after switching many). The generation it replaces becomes the previous one
        (named first, so a crash never loses it); the one before that is removed. Going back to
        the previous generation (a rollback) swaps the two links in one step."""
        served, dropped = self.current(), self.previous()
        if served == self.path:  # a 0.2 directory: swap it for the link, then name it a generation
            link = self._new_link(generation)
            _exchange(link, self.path)
            served = os.path.join(self.parent, f".{self.name}.gen{self._number(os.path.basename(generation)) - 1}")
            # Named as previous before the directory takes that name: a kill in between leaves it
            # under its link's name, which remove_leftovers makes the previous generation.
            self._point(self._previous_link, served)
            os.rename(link, served)
        elif served is not None and generation == dropped:
            _exchange(self._previous_link, self.path)
        else:
            if served is not None:
                self._point(self._previous_link, served)
            self._point(self.path, generation)
        if sync:
            fsync_directory(self.parent)
        if dropped not in (None, generation, served):
            _remove(dropped, self.parent, self.name)

    def fix_owner_and_modes(self, files: dict, gid: int, check_mode: bool) -> bool:
        """Owner and modes of the generation in use, in place (its content is what is wanted)."""
        current = self.current()
        changed = ensure_directory(current, self.mode, self.uid, gid, check_mode)
        for name, (_content, mode) in files.items():
            path = os.path.join(current, name)
            st = os.lstat(path)
            if stat.S_IMODE(st.st_mode) != mode or self.uid not in (-1, st.st_uid) or gid not in (-1, st.st_gid):
                changed = True
                if not check_mode:
                    set_owner_mode(path, mode, self.uid, gid)
        return changed

    @property
    def _previous_link(self):
        return os.path.join(self.parent, f".{self.name}.previous")

    def _new_link(self, generation):
        link = os.path.join(self.parent, f".{self.name}.link-{secrets.token_hex(6)}")
        os.symlink(os.path.basename(generation), link)
        return link

    def _point(self, path, generation):
        link = self._new_link(generation)
        try:
            os.replace(link, path)
        except BaseException:
            os.unlink(link)
            raise

    def _number(self, name: str):
        match = _GENERATION.match(name)
        return int(match.group("number")) if match and match.group("name") == self.name else None


def remove_leftovers(parent: str, mode: int) -> None:
    """What killed runs left in parent: temp directories and links (never in use, maybe holding
    a key) and generations neither in use nor previous. One listing for the whole directory.
    A 0.2 directory displaced by a killed migration becomes the previous generation. Only safe
    while holding the lock every writer of parent holds."""
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(parent, name)
        leftover = _LEFTOVER.match(name)
        if leftover and name.startswith(f".{leftover.group('name')}.link-") and os.path.isdir(path) and not os.path.islink(path):
            owner = Generations(os.path.join(parent, leftover.group("name")), mode)
            os.rename(path, os.path.join(parent, f".{owner.name}.gen0"))
            owner._point(owner._previous_link, os.path.join(parent, f".{owner.name}.gen0"))
        elif leftover:
            _remove(path, parent, leftover.group("name"))
    kept = {}
    for name in os.listdir(parent):
        generation = _GENERATION.match(name)
        if generation:
            owner = generation.group("name")
            if owner not in kept:
                sets = Generations(os.path.join(parent, owner), mode)
                try:
                    kept[owner] = {sets.current(), sets.previous()}
                except FileError:
                    kept[owner] = None  # not ours to judge: leave it
            if kept[owner] is not None and os.path.join(parent, name) not in kept[owner]:
                _remove(os.path.join(parent, name), parent, owner)


def _remove(path, parent, name):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    doomed = os.path.join(parent, f".{name}.tmp-{secrets.token_hex(6)}")
    os.rename(path, doomed)  # a kill mid-removal leaves a temp, never half a generation
    shutil.rmtree(doomed)


def _exchange(first: str, second: str) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE, Linux 3.15+), so the path is never missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    at_fdcwd = -100
    if renameat2 is None or renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno() if renameat2 is not None else errno.ENOSYS
        raise FileError(f"cannot swap {second} for a generation link atomically ({os.strerror(error)}); "
                        "this needs Linux 3.15+ and glibc 2.28+")
