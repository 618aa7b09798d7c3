# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only inspection of installed certificates, on any host. No Ansible imports."""

from __future__ import annotations

import grp
import os
import pwd
import stat

from . import pki
from .files import FileError, read_file


def load_bundle(path: str | None):
    """The roots of a trust bundle, or None when no bundle is given."""
    if not path:
        return None
    pem = read_file(path)
    if pem is None:
        raise pki.PKIError(f"ca_bundle_path: {path} does not exist")
    return tuple(pki.load_certificates(pem, path))


def inspect(entry: dict, roots, renew_before: pki.RenewBefore, now) -> dict:
    """Facts and the renewal verdict for one installed certificate (never key material).

    entry: name, path, privatekey_path (optional) and, optionally, what the cert must say
    (subject_alt_name, common_name, profile, key_type); with no subject_alt_name nothing is compared.
    """
    path, key_path = entry["path"], entry.get("privatekey_path")
    info = {"name": entry.get("name") or path, "path": path, "privatekey_path": key_path, "exists": False}
    chain = _read_chain(path)
    key_problem = None
    if key_path:
        info["privatekey"] = _file_facts(key_path)
        if isinstance(chain, list):
            key_problem = _key_problem(chain[0], key_path)
            info["key_matches"] = key_problem is None
    if isinstance(chain, list):
        leaf = chain[0]
        info.update(pki.describe(leaf, now), exists=True, chain_length=len(chain), file=_file_facts(path))
        if roots is not None:
            problem = pki.chain_problem(leaf, chain[1:], roots, now)
            info["chain_verified"], info["chain_problem"] = problem is None, problem
    spec = _expected_spec(entry, chain)
    verdict = pki.renewal_verdict(chain, key_problem, spec, (), roots, renew_before, now)
    info.update(renew=verdict.renew, reason=verdict.reason.value if verdict.reason else None, detail=verdict.detail)
    return info


def _read_chain(path):
    try:
        pem = read_file(path)
    except FileError as exc:
        return pki.PKIError(str(exc))
    if pem is None:
        return None
    try:
        return pki.load_certificates(pem, path)
    except pki.PKIError as exc:
        return exc


def _key_problem(leaf, key_path):
    try:
        pem = read_file(key_path)
        if pem is None:
            return f"{key_path} is missing"
        return pki.key_mismatch(leaf, pki.load_private_key(pem, key_path))
    except (pki.PKIError, FileError) as exc:
        return str(exc)
    except PermissionError:
        return f"{key_path} is not readable by this user"


def _expected_spec(entry, chain):
    if not entry.get("subject_alt_name"):
        return None
    leaf = chain[0] if isinstance(chain, list) else None
    own_profile = pki.Profile.of(leaf) if leaf is not None else None
    own_key_type = pki.KeyType.of(leaf.public_key()) if leaf is not None else None
    return pki.LeafSpec(
        name=entry.get("name") or entry["path"],
        common_name=entry.get("common_name") or (pki.common_name_of(leaf) if leaf is not None else entry.get("name")),
        sans=tuple(entry["subject_alt_name"]),
        profile=pki.Profile.parse(entry["profile"]) if entry.get("profile") else own_profile or pki.Profile.SERVICE,
        key_type=pki.KeyType.parse(entry["key_type"]) if entry.get("key_type") else own_key_type or pki.KeyType.ECDSA_P256,
    )


def _file_facts(path) -> dict | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": _name(pwd.getpwuid, st.st_uid), "group": _name(grp.getgrgid, st.st_gid)}


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def crl_facts(path: str, now) -> dict:
    """The installed CRLs: whether they exist and the earliest next update (when nginx would
    start refusing every client if nothing newer arrives)."""
    pem = read_file(path)
    if pem is None:
        return {"path": path, "exists": False, "issuers": [], "next_update": None, "next_update_timestamp": None, "days_left": None}
    crls = pki.load_crls(pem, path)
    if not crls:
        raise pki.PKIError(f"crl_path: {path} holds no CRL")
    earliest = min(pki.crl_next_update(crl) for crl in crls)
    return {
        "path": path, "exists": True, "issuers": [crl.issuer.rfc4514_string() for crl in crls],
        "next_update": f"{earliest:%Y-%m-%dT%H:%M:%SZ}", "next_update_timestamp": int(earliest.timestamp()),
        "days_left": round((earliest - now).total_seconds() / 86400, 2),
    }
