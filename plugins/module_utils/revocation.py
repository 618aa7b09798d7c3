# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocations recorded in the CA directory, and the CRLs published from them.

revoked.json lists every revoked certificate (serial, the CA that issued it, reason, when, and
its name and expiry when known). crl.pem holds one CRL per CA the directory signs for (see
authority.known_cas): nginx's ssl_crl turns on CRL checks for the whole chain, so a CA without a
CRL in that file would make every certificate under it fail. No Ansible imports; every entry
point takes ``now``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field

from . import authority, generations, pki
from .custody import CAKeys
from .files import FileBatch, read_file

REVOKED_FILE = "revoked.json"
CRL_FILE = "crl.pem"
DEFAULT_CRL_LIFETIME = "30d"
DEFAULT_CRL_RENEW_BEFORE = "20d"


@dataclass(frozen=True)
class RevokeRequest:
    name: str | None = None
    serial: str | None = None
    reason: pki.RevocationReason = pki.RevocationReason.UNSPECIFIED
    host: str | None = None  # with a name: the host it is meant for, checked against the store's record

    def __post_init__(self):
        if self.name is not None and not pki.SAFE_NAME.fullmatch(str(self.name)):
            raise pki.PKIError(f"name {self.name!r} is no certificate name (<inventory host>-<service>: letters, digits, '.', '_' and '-')")
        if self.serial is not None:  # canonical: upper-case hex without colons or leading zeros
            digits = str(self.serial).replace(":", "")
            if not re.fullmatch(r"[0-9A-Fa-f]{1,40}", digits) or not int(digits, 16):
                raise pki.PKIError(f"serial {self.serial!r} is not a certificate serial in hexadecimal (as openssl and nginx print it)")
            object.__setattr__(self, "serial", f"{int(digits, 16):X}")

    @classmethod
    def parse(cls, raw, index) -> RevokeRequest:
        label = f"revoke[{index}]"
        if not isinstance(raw, dict) or bool(raw.get("name")) == bool(raw.get("serial")):
            raise pki.PKIError(f"{label}: give either name (a certificate name, <host>-<service>) or serial (hex), not both")
        try:
            return cls(name=raw.get("name"), serial=raw.get("serial"), host=raw.get("host") or None,
                       reason=pki.RevocationReason.parse(raw.get("reason") or "unspecified", "reason"))
        except pki.PKIError as exc:
            raise pki.PKIError(f"{label}: {exc}") from None


def read_revocations(path: str) -> list:
    pem = read_file(os.path.join(path, REVOKED_FILE))
    if pem is None:
        return []
    try:
        entries = json.loads(pem)
    except ValueError:
        raise pki.PKIError(f"{os.path.join(path, REVOKED_FILE)} is not valid JSON; restore it from backup") from None
    return entries


def revoked_serials(path: str) -> frozenset:
    return frozenset(int(entry["serial"], 16) for entry in read_revocations(path))


def target(cert, signer, name) -> dict:
    """The revoked.json fields that identify cert, issued by signer."""
    return {"name": name, "serial": pki.serial_text(cert), "issuer": pki.key_identifier(signer),
            "not_after": f"{pki.not_after(cert):%Y-%m-%dT%H:%M:%SZ}"}


def record(path: str, additions, now) -> None:
    """Append additions (targets with a reason) to revoked.json, stamped with now."""
    entries = read_revocations(path) + [dict(addition, revoked_at=f"{now:%Y-%m-%dT%H:%M:%SZ}") for addition in additions]
    batch = FileBatch()
    batch.add(os.path.join(path, REVOKED_FILE), (json.dumps(entries, indent=1) + "\n").encode(), authority.PUBLIC_MODE)
    batch.commit()


def revoke(path: str, requests, keys: CAKeys, now, check_mode=False) -> list:
    """Record each request in revoked.json; returns one dict per certificate revoked by it.

    By name, the certificate in the store and the one it replaced (its previous generation,
    still valid after an early renewal) are both revoked. By serial, the issuer is the CA that
    signs now unless a known CA's certificate carries that serial.
    """
    known = {entry["serial"] for entry in read_revocations(path)}
    cas = authority.known_cas(path, keys)
    if not cas:
        raise pki.PKIError(authority.no_ca_message(path))
    issuer = authority.load_issuer(path, keys).cert
    added, results = [], []
    for request in requests:
        for found in _targets(path, request, cas, issuer, now):
            serial = found["serial"]
            status = "already revoked" if serial in known else "revoked"
            if serial not in known:
                known.add(serial)
                added.append(dict(found, reason=request.reason.value))
            results.append(dict(found, reason=request.reason.value, status=status))
    if added and not check_mode:
        record(path, added, now)
    return results


def _targets(path, request: RevokeRequest, cas, issuer, now) -> list:
    if request.serial is not None:
        for cert, _key in cas:
            if pki.serial_text(cert) == request.serial:
                raise pki.PKIError(f"serial {request.serial} is the CA '{pki.common_name_of(cert)}'; retire a CA with a CA rollover")
        return [{"name": None, "serial": request.serial, "issuer": pki.key_identifier(issuer), "not_after": None}]
    cert_path = os.path.join(path, authority.ISSUED, request.name, authority.CERT_FILE)
    entry = generations.Generations(os.path.dirname(cert_path), authority.DIRECTORY_MODE)
    owner = (entry.read(authority.HOST_FILE) or b"").decode().strip()
    if request.host and owner and owner != request.host:
        raise pki.PKIError(f"certificate {request.name!r} is host {owner}'s in the CA store, not host {request.host}'s; nothing "
                           "was revoked. Revoke by serial (as nginx logs it) if that certificate is the one to revoke")
    replaced = entry.previous()
    targets = []
    # The certificate in the store, the one it replaced, and one replaced in a store of 0.2.
    for candidate in (cert_path, os.path.join(replaced, authority.CERT_FILE) if replaced else None, cert_path + ".previous"):
        if candidate is None:
            continue
        pem = read_file(candidate)
        if pem is None:
            continue
        leaf = pki.load_certificates(pem, candidate)[0]
        signer = next((cert for cert, _key in cas if pki.signed_by(leaf, cert)), None)
        if signer is None or pki.not_after(leaf) <= now:
            continue  # from a CA no longer trusted, or expired: nothing left to revoke
        targets.append(target(leaf, signer, request.name))
    if not targets and read_file(cert_path) is None:
        raise pki.PKIError(f"no certificate named {request.name!r} in {os.path.dirname(os.path.dirname(cert_path))}; "
                           "certificate names are <inventory host>-<service>")
    return targets


def diff_text(revoked, resigned) -> str:
    """What a revocation run changed, for diff mode: each certificate it revoked, and why the CRLs were re-signed."""
    lines = ["revoked %s %s (%s)" % (entry["name"] or "serial", entry["serial"], entry["reason"])
             for entry in revoked if entry["status"] == "revoked"]
    if resigned:
        lines.append("CRLs re-signed: %s" % resigned)
    return "".join(line + "\n" for line in lines)


@dataclass
class CRLResult:
    changed: bool
    reason: str | None
    pem: bytes
    crls: list = field(default_factory=list)
    replaced_next_update: str | None = None  # the earliest next update of the CRLs a re-signing replaced


def ensure_crls(path: str, keys: CAKeys, lifetime: datetime.timedelta, renew_before: pki.RenewBefore, now, check_mode=False) -> CRLResult:
    """Keep crl.pem holding a current CRL for every CA the fleet trusts; re-sign all of them when a
    CA or a revocation was added or removed, or when one is inside renew_before of its next update."""
    cas = authority.known_cas(path, keys)
    if not cas:
        raise pki.PKIError(authority.no_ca_message(path))
    cas = _still_trusted(path, cas)
    wanted = {pki.key_identifier(cert): frozenset() for cert, _key in cas}
    entries = [e for e in read_revocations(path) if e["issuer"] in wanted and not _expired(e, now)]
    for entry in entries:
        wanted[entry["issuer"]] |= {int(entry["serial"], 16)}

    crl_path = os.path.join(path, CRL_FILE)
    current_pem = read_file(crl_path)
    reason = _resign_reason(current_pem, crl_path, cas, wanted, renew_before, lifetime, now)
    pem = current_pem
    replaced = _earliest_next_update(current_pem, crl_path) if reason is not None else None
    if reason is not None:
        revoked_at = {int(e["serial"], 16): _parse_time(e["revoked_at"]) for e in entries}
        reasons = {int(e["serial"], 16): pki.RevocationReason.parse(e["reason"]) for e in entries}
        crls = [
            pki.build_crl(cert, key, [pki.Revoked(s, revoked_at[s], reasons[s]) for s in wanted[pki.key_identifier(cert)]], now, lifetime)
            for cert, key in cas
        ]
        pem = b"".join(pki.crl_to_pem(crl) for crl in crls)
        if not check_mode:
            batch = FileBatch(keep_previous=False)
            batch.add(crl_path, pem, authority.PUBLIC_MODE)
            batch.commit()
    crls = pki.load_crls(pem, crl_path) if pem else []
    facts = [{"issuer": crl.issuer.rfc4514_string(), "next_update": f"{pki.crl_next_update(crl):%Y-%m-%dT%H:%M:%SZ}",
              "revoked": len(crl)} for crl in crls]
    return CRLResult(changed=reason is not None, reason=reason, pem=pem or b"", crls=facts, replaced_next_update=replaced)


def _earliest_next_update(pem, crl_path) -> str | None:
    """When hosts that still hold these CRLs stop accepting anyone (nginx and OpenSSL refuse every
    client once a CRL is past its next update), or None when there were none or they are unreadable."""
    try:
        crls = pki.load_crls(pem, crl_path) if pem else []
    except pki.PKIError:
        return None
    return min((f"{pki.crl_next_update(crl):%Y-%m-%dT%H:%M:%SZ}" for crl in crls), default=None)


def _still_trusted(path, cas) -> list:
    """The CAs whose CRLs are due: those whose root is in the trust bundle and that are not revoked.
    A rollover's retire phase takes the old root out of the bundle, or revokes the old
    intermediate, and the CRLs it publishes then are the final ones: finishing the rollover (its
    old CA files destroyed) leaves nothing to re-sign or reinstall."""
    pem = read_file(os.path.join(path, authority.BUNDLE))
    if pem is None:
        return cas
    roots = pki.load_certificates(pem, os.path.join(path, authority.BUNDLE))
    revoked = revoked_serials(path)
    return [(cert, key) for cert, key in cas
            if any(pki.signed_by(cert, root) for root in roots) and int(pki.serial_text(cert), 16) not in revoked]


def _resign_reason(current_pem, crl_path, cas, wanted, renew_before, lifetime, now) -> str | None:
    if current_pem is None:
        return "no CRL yet"
    try:
        current = pki.load_crls(current_pem, crl_path)
    except pki.PKIError as exc:
        return str(exc)
    by_issuer = {}
    for crl in current:
        signer = next((cert for cert, _key in cas if crl.issuer == cert.subject and crl.is_signature_valid(cert.public_key())), None)
        if signer is not None:
            by_issuer[pki.key_identifier(signer)] = crl
    if set(by_issuer) != set(wanted) or len(current) != len(wanted):
        return "the set of CAs changed"
    for ski, crl in by_issuer.items():
        if pki.crl_serials(crl) != wanted[ski]:
            return "revocations changed"
        next_update = pki.crl_next_update(crl)
        if now >= next_update - renew_before.window(lifetime):
            return f"a CRL expires {next_update:%Y-%m-%d %H:%M} UTC, inside crl_renew_before"
    return None


def _expired(entry, now) -> bool:
    return entry.get("not_after") is not None and _parse_time(entry["not_after"]) <= now


def _parse_time(text) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
