# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install a host's certificate generation: per service, a directory holding key.pem,
cert.pem (leaf + intermediates) and ca-bundle.pem, and the other formats the service asks for
(keystores.py: HAProxy's combined.pem, Java's PKCS#12 stores). No Ansible imports.

Everything is checked before anything is written (each certificate parses and matches the key
it will be served with, including a key made on the host). Each service's directory is switched
as a whole (generations.py): written and synced beside the one served, then one rename, so a
crash never pairs a new key with an old certificate; a rollback is one rename back.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import stat
from dataclasses import dataclass

from . import generations, keystores, locking, pki
from .files import FileBatch, FileError, read_file, require_safe_directory, set_owner_mode

CERT_FILE, KEY_FILE, BUNDLE_FILE = "cert.pem", "key.pem", "ca-bundle.pem"
DIRECTORY_MODE, PUBLIC_MODE = 0o750, 0o644
# Files that hold the key (or open it): never looser than the service's key_mode.
SECRET_FILES = (KEY_FILE, KEY_FILE + ".previous", keystores.COMBINED_FILE, keystores.KEYSTORE_FILE, keystores.PASSWORD_FILE)
MISMATCH = "the certificate does not match its private key; refusing to install a pair nginx could not load"
# Two runs installing on one host at once (two operators) wait for each other this long.
HOST_LOCK_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServiceFiles:
    name: str
    directory: str
    certificate: bytes
    private_key: bytes | None = None  # None: the key is already on the host (CSR mode)
    next_key_path: str | None = None  # CSR mode with keys new at every renewal: the key kept ready for the next certificate
    uid: int = -1
    gid: int = -1
    key_mode: int = 0o600
    formats: tuple = ()  # keystores.FORMATS


# A service's entry in the modules that install generations (certificate_files, host_transaction).
SERVICE_OPTIONS = dict(
    name=dict(type="str", required=True),
    path=dict(type="path", required=True),
    certificate=dict(type="str"),
    private_key=dict(type="str", no_log=True),
    next_key_path=dict(type="path", no_log=False),
    group=dict(type="str", default="root"),
    key_mode=dict(type="str", default="0600", choices=["0600", "0640"]),
    formats=dict(type="list", elements="str", default=[], choices=list(keystores.FORMATS)),
)


def service_from_options(entry: dict) -> ServiceFiles:
    """A ServiceFiles from a module's services[] entry (SERVICE_OPTIONS); its group must exist here."""
    try:
        gid = grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        raise pki.PKIError(f"service {entry['name']!r}: group {entry['group']!r} does not exist on this host; create it or change the group") from None
    return ServiceFiles(name=entry["name"], directory=entry["path"], certificate=(entry["certificate"] or "").encode(),
                        private_key=entry["private_key"].encode() if entry["private_key"] else None,
                        next_key_path=entry["next_key_path"], gid=gid, key_mode=int(entry["key_mode"], 8),
                        formats=tuple(entry.get("formats") or ()))


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
        for parent in sorted({layout.parent for _service, _leaf, _previous, layout, _key in plans}):
            require_safe_directory(parent)
            generations.remove_leftovers(parent, DIRECTORY_MODE)
    try:
        for service, leaf, previous, layout, key_pem in plans:
            wanted = _wanted_files(service, bundle, key_pem, layout)
            replaced = sorted(name for name, (content, _mode) in wanted.items() if layout.read(name) != content)
            if replaced:
                changed = True
                if not check_mode:
                    switches.append((service, layout, layout.write(wanted, service.gid), key_pem))
            else:
                changed = layout.fix_owner_and_modes(wanted, service.gid, check_mode)
                changed = _tighten_previous_keys(layout, service, check_mode) or changed
            results.append({
                "name": service.name, "changed": changed, "directory": service.directory,
                "serial": pki.serial_text(leaf), "previous_serial": pki.serial_text(previous) if previous else None,
                "renewed": previous is None or previous.serial_number != leaf.serial_number, "replaced": replaced,
                "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **paths(service),
            })
    except BaseException:
        for _service, _layout, generation, _key in switches:  # nothing was switched yet: the served files stay
            shutil.rmtree(generation, ignore_errors=True)
        raise
    for service, layout, generation, key_pem in switches:
        layout.switch_to(generation)
        if service.next_key_path and read_file(service.next_key_path) == key_pem:
            _renew_next_key(service, key_pem)
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
        layout = _generations(service)
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
            "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **paths(service),
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
    names = (KEY_FILE, KEY_FILE + ".previous")
    found = _key_of(leaf, [(os.path.join(generation, name), read_file(os.path.join(generation, name))) for name in names])
    if found is None:
        raise pki.PKIError("the previous certificate and key do not match; not restoring them")
    return os.path.basename(found[0])


def _key_of(leaf, candidates):
    """The first (path, PEM) of candidates whose key leaf was issued for, or None; missing and
    unreadable keys are passed over."""
    for where, pem in candidates:
        try:
            if pem is not None and not pki.key_mismatch(leaf, pki.load_private_key(pem, where)):
                return where, pem
        except pki.PKIError:
            continue
    return None


@contextlib.contextmanager
def _host_lock(services, check_mode):
    """One install at a time per certificate directory (check mode only reads), which must be
    safe to lock and write in: refused before anything is written there."""
    errors = []
    for service in services:
        try:
            require_safe_directory(_generations(service).parent, check_mode=True)
        except FileError as exc:
            errors.append(f"service {service.name!r}: {exc}")
    if errors:
        raise pki.PKIError("; ".join(errors))
    with contextlib.ExitStack() as stack:
        if not check_mode:
            for parent in sorted({_generations(service).parent for service in services}):
                stack.enter_context(locking.ca_lock(parent, "mtls.fleet.certificate_files", HOST_LOCK_TIMEOUT,
                                                    what="the certificate directory", fix="check for a hung run"))
        yield


def _generations(service):
    return generations.Generations(service.directory, DIRECTORY_MODE, uid=0)


def _wanted_files(service, bundle, key, layout) -> dict:
    wanted = {KEY_FILE: (key, service.key_mode), CERT_FILE: (service.certificate, PUBLIC_MODE), BUNDLE_FILE: (bundle, PUBLIC_MODE)}
    if "haproxy" in service.formats:
        wanted[keystores.COMBINED_FILE] = (keystores.combined(key, service.certificate), service.key_mode)
    if "pkcs12" in service.formats:
        store, password = keystores.keystore(key, service.certificate, layout.read(keystores.KEYSTORE_FILE), layout.read(keystores.PASSWORD_FILE))
        wanted[keystores.KEYSTORE_FILE] = (store, service.key_mode)
        wanted[keystores.PASSWORD_FILE] = (password, service.key_mode)
        wanted[keystores.TRUSTSTORE_FILE] = (keystores.truststore(bundle), PUBLIC_MODE)
    return wanted


def paths(service):
    """Where a service's certificate, key and bundle are served from."""
    return {f"{name}_path": os.path.join(service.directory, file) for name, file in (("cert", CERT_FILE), ("key", KEY_FILE), ("bundle", BUNDLE_FILE))}


def _plan(service, roots, now):
    layout = _generations(service)
    chain = pki.load_certificates(service.certificate, "certificate")
    leaf = chain[0]
    key_pem = service.private_key if service.private_key is not None else _host_key_for(service, layout, leaf)
    if service.private_key is not None and pki.key_mismatch(leaf, pki.load_private_key(key_pem, "private_key")):
        raise pki.PKIError(MISMATCH)
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
    return service, leaf, previous, layout, key_pem


def _host_key_for(service, layout, leaf) -> bytes:
    """CSR mode: the key on the host this certificate is for, the one in use or the next one."""
    candidates = [(os.path.join(service.directory, KEY_FILE), layout.read(KEY_FILE))]
    if service.next_key_path:
        candidates.append((service.next_key_path, read_file(service.next_key_path)))
    if all(pem is None for _where, pem in candidates):
        raise pki.PKIError(f"no private key in {service.directory}; send private_key, or create it on the host with mtls.fleet.csr")
    found = _key_of(leaf, candidates)
    if found is None:
        raise pki.PKIError(MISMATCH)
    return found[1]


def _tighten_previous_keys(layout, service, check_mode) -> bool:
    """The previous generation's keys get the owner, group and (never a looser) mode the service's
    key has now. Not when it is replaced: a rollback in the same rotation serves that generation
    as it was. But once the current one is kept by a run, an access tightened since (another
    group, 0600) holds for the old key too, which is still valid."""
    previous = layout.previous()
    changed = False
    for name in SECRET_FILES if previous else ():
        path = os.path.join(previous, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(st.st_mode) & service.key_mode
        if stat.S_IMODE(st.st_mode) != mode or layout.uid not in (-1, st.st_uid) or service.gid not in (-1, st.st_gid):
            changed = True
            if not check_mode:
                set_owner_mode(path, mode, layout.uid, service.gid)
    return changed


def _renew_next_key(service, used_pem) -> None:
    """The next key just went into service: keep a fresh one ready (same type, 0600, atomic), so
    the next renewal certifies a new key again and a re-run finds nothing to do."""
    used = pki.load_private_key(used_pem, service.next_key_path)
    batch = FileBatch(keep_previous=False)
    batch.add(service.next_key_path, pki.key_to_pem(pki.KeyType.of(used).generate()), 0o600, 0, 0)
    batch.commit()
