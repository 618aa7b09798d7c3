# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install a host's certificate generation: per service, a directory holding key.pem,
cert.pem (leaf + intermediates) and ca-bundle.pem. No Ansible imports.

Everything is checked before anything is written (each certificate parses and matches the key
it will be served with, including a key made on the host), then all files go in one batch:
keys first, then certificates, each atomically, the replaced files kept as *.previous.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from . import pki
from .files import PREVIOUS_SUFFIX, FileBatch, ensure_directory, read_file

CERT_FILE, KEY_FILE, BUNDLE_FILE = "cert.pem", "key.pem", "ca-bundle.pem"
DIRECTORY_MODE, PUBLIC_MODE = 0o750, 0o644


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
    bundle_roots = pki.load_certificates(bundle, "ca_bundle")
    plans, errors = [], []
    for service in services:
        try:
            plans.append(_plan(service, bundle_roots, now))
        except pki.PKIError as exc:
            errors.append(f"service {service.name!r}: {exc}")
    if errors:
        raise pki.PKIError("; ".join(errors))

    batch, results = FileBatch(), []
    for service, leaf, previous in plans:
        changed = ensure_directory(service.directory, DIRECTORY_MODE, 0, service.gid, check_mode)
        paths = _paths(service)
        wanted = {"cert": service.certificate, "bundle": bundle}
        if service.private_key is not None:
            wanted["key"] = service.private_key
        # One generation: if any file's content changes, all are replaced, so every *.previous
        # belongs to the generation being replaced (a rollback then restores exactly that one).
        replaced = sorted(os.path.basename(paths[name]) for name, content in wanted.items() if read_file(paths[name]) != content)
        new_generation = bool(replaced)
        if service.private_key is not None:
            changed |= batch.add(paths["key"], service.private_key, service.key_mode, 0, service.gid, rewrite=new_generation)
        else:
            changed |= _key_permissions_differ(paths["key"], service)
        changed |= batch.add(paths["cert"], service.certificate, PUBLIC_MODE, 0, service.gid, rewrite=new_generation)
        changed |= batch.add(paths["bundle"], bundle, PUBLIC_MODE, 0, service.gid, rewrite=new_generation)
        results.append({
            "name": service.name, "changed": changed, "directory": service.directory,
            "serial": pki.serial_text(leaf), "previous_serial": pki.serial_text(previous) if previous else None,
            "renewed": previous is None or previous.serial_number != leaf.serial_number, "replaced": replaced,
            "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **{f"{k}_path": v for k, v in paths.items()},
        })
    if not check_mode:
        batch.commit()
        for service in services:
            if service.private_key is None:
                key = _paths(service)["key"]
                os.chown(key, 0, service.gid, follow_symlinks=False)
                os.chmod(key, service.key_mode)
    return results


def install_crl(path: str, content: bytes, check_mode=False) -> bool:
    """Put the CA's CRLs at path (host-wide, 0644 root): checked first, written atomically.

    Not part of a service's generation: a rollback keeps the newer CRLs, which cover every CA
    still in any bundle. Returns whether it changed.
    """
    if not pki.load_crls(content, "crl"):
        raise pki.PKIError("crl holds no PEM CRL; pass the crl output of mtls.fleet.crl")
    batch = FileBatch(keep_previous=False)
    changed = batch.add(path, content, PUBLIC_MODE, 0, 0)
    if changed and not check_mode:
        ensure_directory(os.path.dirname(path), 0o755, check_mode=check_mode)
        batch.commit()
    return changed


def restore_previous(services, now, check_mode=False) -> list:
    """Put each service's previous generation back (the one just replaced becomes *.previous).

    Checked first for every service: the previous certificate must exist and match the previous
    key, or the current one when the key was not replaced (a key made on the host). Each file
    gets back the owner and mode it had.
    """
    plans, errors = [], []
    for service in services:
        paths = _paths(service)
        previous = {name: read_file(path + PREVIOUS_SUFFIX) for name, path in paths.items()}
        if previous["key"] is None:
            previous["key"] = read_file(paths["key"])
        try:
            if previous["cert"] is None or previous["key"] is None:
                raise pki.PKIError(f"there is no previous generation in {service.directory} to restore")
            leaf = pki.load_certificates(previous["cert"], paths["cert"] + PREVIOUS_SUFFIX)[0]
            if pki.key_mismatch(leaf, pki.load_private_key(previous["key"], paths["key"] + PREVIOUS_SUFFIX)):
                raise pki.PKIError("the previous certificate and key do not match; not restoring them")
        except pki.PKIError as exc:
            errors.append(f"service {service.name!r}: {exc}")
            continue
        plans.append((service, paths, previous, leaf))
    if errors:
        raise pki.PKIError("; ".join(errors))
    batch, results, directories = FileBatch(), [], []
    for service, paths, previous, leaf in plans:
        current = read_file(paths["cert"])
        for name in ("key", "cert", "bundle"):  # keys first
            if previous[name] is not None:
                # The previous generation comes back as it was, owner and mode included (and the
                # directory's group with it): the new one may be what the app could not read.
                kept = paths[name] + PREVIOUS_SUFFIX
                st = os.lstat(kept if os.path.lexists(kept) else paths[name])
                batch.add(paths[name], previous[name], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
                if name == "key":
                    directories.append((service.directory, st.st_gid))
        replaced = pki.load_certificates(current, paths["cert"])[0] if current else None
        results.append({
            "name": service.name, "changed": True, "directory": service.directory, "serial": pki.serial_text(leaf),
            "previous_serial": pki.serial_text(replaced) if replaced else None,
            "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}", **{f"{k}_path": v for k, v in paths.items()},
        })
    if not check_mode:
        for directory, gid in directories:
            ensure_directory(directory, DIRECTORY_MODE, 0, gid)
        batch.commit()
    return results


def _paths(service):
    return {name: os.path.join(service.directory, file) for name, file in (("cert", CERT_FILE), ("key", KEY_FILE), ("bundle", BUNDLE_FILE))}


def _plan(service, roots, now):
    paths = _paths(service)
    chain = pki.load_certificates(service.certificate, "certificate")
    leaf = chain[0]
    if service.private_key is not None:
        key = pki.load_private_key(service.private_key, "private_key")
    else:
        key_pem = read_file(paths["key"])
        if key_pem is None:
            raise pki.PKIError(f"no private key at {paths['key']}; send private_key, or create it on the host with mtls.fleet.csr")
        key = pki.load_private_key(key_pem, paths["key"])
    if pki.key_mismatch(leaf, key):
        raise pki.PKIError("the certificate does not match its private key; refusing to install a pair nginx could not load")
    problem = pki.chain_problem(leaf, chain[1:], roots, now)
    if problem:
        raise pki.PKIError(f"the certificate does not verify against ca_bundle: {problem}")
    previous_pem = read_file(paths["cert"])
    previous = None
    if previous_pem:
        try:
            previous = pki.load_certificates(previous_pem, paths["cert"])[0]
        except pki.PKIError:
            previous = None
    return service, leaf, previous


def _key_permissions_differ(path, service) -> bool:
    st = os.lstat(path)
    return (st.st_mode & 0o7777) != service.key_mode or st.st_uid != 0 or (service.gid != -1 and st.st_gid != service.gid)
