# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install a host's certificate generation: per service, a directory holding key.pem,
cert.pem (leaf + intermediates) and ca-bundle.pem. No Ansible imports.

Everything is checked before anything is written (each certificate parses and matches the key
it will be served with, including a key made on the host). A service's path is a symlink to
its current generation, a sibling directory ``.<name>.gen<N>``: a new generation is written and
synced in full beside the served one, then the symlink is replaced in one rename, so a reader
(or a crash) sees the old files or the new ones, never a new key with an old certificate. The
generation it replaced stays for rollback, which is the same one rename back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import stat
from dataclasses import dataclass

from . import locking, pki
from .files import FileBatch, FileError, ensure_directory, fsync_directory, read_file, require_safe_directory, set_owner_mode

CERT_FILE, KEY_FILE, BUNDLE_FILE = "cert.pem", "key.pem", "ca-bundle.pem"
DIRECTORY_MODE, PUBLIC_MODE = 0o750, 0o644
# Two runs installing on one host at once (two operators) wait for each other this long.
HOST_LOCK_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServiceFiles:
    name: str
    directory: str
    certificate: bytes
    private_key: bytes | None = None  # None: the key is already on the host (CSR mode)
    uid: int = -1
    gid: int = -1
    key_mode: int = 0o600


def install(services, bundle: bytes, now, check_mode=False) -> list:
    """Install every service's files; returns one result dict per service."""
    with _host_lock(services, check_mode):
        return _install(services, bundle, now, check_mode)


def _install(services, bundle, now, check_mode):
    bundle_roots = pki.load_certificates(bundle, "ca_bundle")
    plans, errors = [], []
    for service in services:
        try:
            plans.append(_plan(service, bundle_roots, now))
        except (pki.PKIError, FileError) as exc:
            errors.append(f"service {service.name!r}: {exc}")
    if errors:
        raise pki.PKIError("; ".join(errors))

    results, switches = [], []
    if not check_mode:
        for _service, _leaf, _previous, layout in plans:
            layout.remove_leftovers()
    try:
        for service, leaf, previous, layout in plans:
            wanted = _wanted_files(service, bundle, layout)
            replaced = sorted(name for name, (content, _mode) in wanted.items() if layout.read(name) != content)
            if replaced:
                changed = True
                if not check_mode:
                    switches.append((layout, layout.write_generation(wanted, service.gid)))
            else:
                changed = layout.fix_owner_and_modes(wanted, service.gid, check_mode)
            results.append({
                "name": service.name, "changed": changed, "directory": service.directory,
                "serial": pki.serial_text(leaf), "previous_serial": pki.serial_text(previous) if previous else None,
                "renewed": previous is None or previous.serial_number != leaf.serial_number, "replaced": replaced,
                "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **_paths(service),
            })
    except BaseException:
        for _layout, generation in switches:  # nothing was switched yet: the served files stay
            shutil.rmtree(generation, ignore_errors=True)
        raise
    for layout, generation in switches:
        layout.switch_to(generation)
    return results


def install_crl(path: str, content: bytes, check_mode=False) -> bool:
    """Put the CA's CRLs at path (host-wide, 0644 root): checked first, written atomically.

    Not part of a service's generation: a rollback keeps the newer CRLs, which cover every CA
    still in any bundle. Returns whether it changed.
    """
    if not pki.load_crls(content, "crl"):
        raise pki.PKIError("crl holds no PEM CRL; pass the crl output of mtls.fleet.crl")
    require_safe_directory(os.path.dirname(path) or ".", check_mode=check_mode)
    batch = FileBatch(keep_previous=False)
    changed = batch.add(path, content, PUBLIC_MODE, 0, 0)
    if changed and not check_mode:
        batch.commit()
    return changed


def restore_previous(services, now, check_mode=False) -> list:
    """Serve each service's previous generation again (the one it replaces becomes previous).

    Checked first for every service: the previous generation must exist and its certificate
    must match its key. Its files come back as they were, owner and mode included: the new
    generation may be what the app could not read.
    """
    with _host_lock(services, check_mode):
        return _restore_previous(services, check_mode)


def _restore_previous(services, check_mode):
    plans, errors = [], []
    for service in services:
        layout = Layout(service.directory)
        try:
            previous = layout.previous()
            if previous is None:
                raise pki.PKIError(f"there is no previous generation of {service.directory} to restore")
            cert_pem = read_file(os.path.join(previous, CERT_FILE))
            if cert_pem is None:
                raise pki.PKIError(f"the previous generation {previous} is incomplete; not restoring it")
            leaf = pki.load_certificates(cert_pem, os.path.join(previous, CERT_FILE))[0]
            key_file = _matching_key_file(previous, leaf)
        except (pki.PKIError, FileError) as exc:
            errors.append(f"service {service.name!r}: {exc}")
            continue
        plans.append((service, layout, previous, leaf, key_file))
    if errors:
        raise pki.PKIError("; ".join(errors))
    results = []
    for service, layout, previous, leaf, _key_file in plans:
        current = layout.read(CERT_FILE)
        replaced = pki.load_certificates(current, service.directory)[0] if current else None
        results.append({
            "name": service.name, "changed": True, "directory": service.directory, "serial": pki.serial_text(leaf),
            "previous_serial": pki.serial_text(replaced) if replaced else None,
            "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **_paths(service),
        })
    if not check_mode:
        for _service, layout, previous, _leaf, key_file in plans:
            if key_file != KEY_FILE:  # mtls.fleet.csr replaced the key in place; put back the one this certificate is for
                kept = os.lstat(os.path.join(previous, KEY_FILE))
                batch = FileBatch(keep_previous=False)
                batch.add(os.path.join(previous, KEY_FILE), read_file(os.path.join(previous, key_file)),
                          stat.S_IMODE(kept.st_mode), kept.st_uid, kept.st_gid)
                batch.commit()
            layout.switch_to(previous)
    return results


def _matching_key_file(generation, leaf) -> str:
    """The key file in generation that leaf was issued for: key.pem, or the key.pem.previous that
    mtls.fleet.csr kept when it made a new key on the host while that generation was served."""
    for name in (KEY_FILE, KEY_FILE + ".previous"):
        pem = read_file(os.path.join(generation, name))
        if pem is not None and not pki.key_mismatch(leaf, pki.load_private_key(pem, os.path.join(generation, name))):
            return name
    raise pki.PKIError("the previous certificate and key do not match; not restoring them")


class Layout:
    """A service's path and its generations beside it, in the parent directory.

    ``<dir>/<name>`` is a symlink to ``.<name>.gen<N>`` (relative, so the tree can move). A real
    directory there was laid out by mtls.fleet 0.2; it becomes a generation at the next change.
    """

    def __init__(self, directory: str):
        self.path = directory.rstrip("/")
        self.parent, self.name = os.path.split(self.path)
        self.parent = self.parent or "."
        self._prefix = f".{self.name}.gen"

    def current(self) -> str | None:
        """The directory being served, or None."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return self.path
        if not stat.S_ISLNK(st.st_mode):
            raise FileError(f"{self.path} exists and is neither a directory nor a generation link; move it away")
        target = os.readlink(self.path)
        if os.path.basename(target) != target or self._number(target) is None:
            raise FileError(f"{self.path} links to {target!r}, which is not one of its generations (.{self.name}.gen<N>); "
                            "move it away and run again")
        return os.path.join(self.parent, target)

    def generations(self) -> dict:
        try:
            names = os.listdir(self.parent)
        except FileNotFoundError:
            return {}
        found = {self._number(n): os.path.join(self.parent, n) for n in names}
        found.pop(None, None)
        return found

    def previous(self) -> str | None:
        """The generation served before the current one (the ``.<name>.previous`` link), if any."""
        try:
            target = os.readlink(self._previous_link)
        except FileNotFoundError:
            return None
        path = os.path.join(self.parent, target)
        return path if self._number(target) is not None and os.path.isdir(path) and path != self.current() else None

    def read(self, name: str) -> bytes | None:
        current = self.current()
        return read_file(os.path.join(current, name)) if current else None

    def write_generation(self, files: dict, gid: int) -> str:
        """Write files ({name: (content, mode)}) into a new generation, synced; returns its path."""
        require_safe_directory(self.parent)
        number = max(self.generations(), default=0) + 1 + (self.current() == self.path)
        temp = os.path.join(self.parent, f".{self.name}.tmp-{secrets.token_hex(6)}")
        try:
            os.mkdir(temp, DIRECTORY_MODE)
            set_owner_mode(temp, DIRECTORY_MODE, 0, gid)
            batch = FileBatch(keep_previous=False)
            for name in (KEY_FILE, CERT_FILE, BUNDLE_FILE):  # the key exists before anything names it
                content, mode = files[name]
                batch.add(os.path.join(temp, name), content, mode, 0, gid)
            batch.commit()
            generation = os.path.join(self.parent, f"{self._prefix}{number}")
            os.rename(temp, generation)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return generation

    def switch_to(self, generation: str) -> None:
        """Serve generation: one rename of the service's link, made durable. The generation it
        replaces becomes the previous one (named first, so a crash never loses it); any other
        is removed."""
        served = self.current()
        if served == self.path:  # a 0.2 directory: swap it for the link, then name it a generation
            link = self._new_link(generation)
            _exchange(link, self.path)
            served = os.path.join(self.parent, f"{self._prefix}{self._number(os.path.basename(generation)) - 1}")
            os.rename(link, served)
            self._point(self._previous_link, served)
        else:
            if served is not None:
                self._point(self._previous_link, served)
            self._point(self.path, generation)
        fsync_directory(self.parent)
        self._prune(keep=(generation, served))

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

    def _prune(self, keep):
        for path in self.generations().values():
            if path not in keep:
                doomed = os.path.join(self.parent, f".{self.name}.tmp-{secrets.token_hex(6)}")
                os.rename(path, doomed)  # a kill mid-removal leaves a temp, never half a generation
                shutil.rmtree(doomed)

    def fix_owner_and_modes(self, files: dict, gid: int, check_mode: bool) -> bool:
        current = self.current()
        changed = ensure_directory(current, DIRECTORY_MODE, 0, gid, check_mode)
        for name, (_content, mode) in files.items():
            path = os.path.join(current, name)
            st = os.lstat(path)
            if stat.S_IMODE(st.st_mode) != mode or st.st_uid != 0 or gid not in (-1, st.st_gid):
                changed = True
                if not check_mode:
                    set_owner_mode(path, mode, 0, gid)
        return changed

    def _number(self, name: str):
        rest = name[len(self._prefix):] if name.startswith(self._prefix) else ""
        return int(rest) if rest.isdigit() else None

    def remove_leftovers(self) -> None:
        """What a killed run left: temp directories and links (never served, maybe holding a
        key), generations neither served nor previous. A 0.2 directory displaced by a killed
        migration is kept as the previous generation."""
        if not os.path.isdir(self.parent):
            return
        for name in os.listdir(self.parent):
            path = os.path.join(self.parent, name)
            if name.startswith(f".{self.name}.link-") and os.path.isdir(path) and not os.path.islink(path):
                os.rename(path, os.path.join(self.parent, f"{self._prefix}0"))
                self._point(self._previous_link, os.path.join(self.parent, f"{self._prefix}0"))
            elif name.startswith((f".{self.name}.tmp-", f".{self.name}.link-")):
                if os.path.islink(path) or not os.path.isdir(path):
                    os.unlink(path)
                else:
                    shutil.rmtree(path)
        if self.current() not in (None, self.path):
            self._prune(keep=(self.current(), self.previous()))


@contextlib.contextmanager
def _host_lock(services, check_mode):
    """One install at a time per certificate directory (check mode only reads), which must be
    safe to lock and write in: refused before anything is written there."""
    errors = []
    for service in services:
        try:
            require_safe_directory(Layout(service.directory).parent, check_mode=True)
        except FileError as exc:
            errors.append(f"service {service.name!r}: {exc}")
    if errors:
        raise pki.PKIError("; ".join(errors))
    with contextlib.ExitStack() as stack:
        if not check_mode:
            for parent in sorted({Layout(service.directory).parent for service in services}):
                stack.enter_context(locking.ca_lock(parent, "mtls.fleet.certificate_files", HOST_LOCK_TIMEOUT,
                                                    what="the certificate directory", fix="check for a hung run"))
        yield


_RENAME_EXCHANGE = 2


def _exchange(first: str, second: str) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE, Linux 3.15+), so the path is never missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    at_fdcwd = -100
    if renameat2 is None or renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno() if renameat2 is not None else errno.ENOSYS
        raise FileError(f"cannot swap {second} for a generation link atomically ({os.strerror(error)}); "
                        "this needs Linux 3.15+ and glibc 2.28+")


def _wanted_files(service, bundle, layout) -> dict:
    key = service.private_key if service.private_key is not None else layout.read(KEY_FILE)
    return {KEY_FILE: (key, service.key_mode), CERT_FILE: (service.certificate, PUBLIC_MODE), BUNDLE_FILE: (bundle, PUBLIC_MODE)}


def _paths(service):
    return {f"{name}_path": os.path.join(service.directory, file) for name, file in (("cert", CERT_FILE), ("key", KEY_FILE), ("bundle", BUNDLE_FILE))}


def _plan(service, roots, now):
    layout = Layout(service.directory)
    chain = pki.load_certificates(service.certificate, "certificate")
    leaf = chain[0]
    if service.private_key is not None:
        key = pki.load_private_key(service.private_key, "private_key")
    else:
        key_pem = layout.read(KEY_FILE)
        if key_pem is None:
            raise pki.PKIError(f"no private key in {service.directory}; send private_key, or create it on the host with mtls.fleet.csr")
        key = pki.load_private_key(key_pem, os.path.join(service.directory, KEY_FILE))
    if pki.key_mismatch(leaf, key):
        raise pki.PKIError("the certificate does not match its private key; refusing to install a pair nginx could not load")
    problem = pki.chain_problem(leaf, chain[1:], roots, now)
    if problem:
        raise pki.PKIError(f"the certificate does not verify against ca_bundle: {problem}")
    previous_pem = layout.read(CERT_FILE)
    previous = None
    if previous_pem:
        try:
            previous = pki.load_certificates(previous_pem, service.directory)[0]
        except pki.PKIError:
            previous = None
    return service, leaf, previous, layout
