# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuance ledger: every issuance, renewal, revocation and CA change of a CA directory,
one JSON line each in ledger.jsonl, hash-chained and signed by the CA's key.

Each line is the canonical JSON (sorted keys, no spaces) of an entry whose ``prev`` is the
SHA-256 of the line before it and whose ``signature`` is the issuing CA's signature over the
entry without it. A changed line breaks its signature, a removed or reordered one breaks the
chain. A certificate's serial still in the store but absent from the ledger shows a truncated
end (the one change the chain cannot see by itself), and report calls that drift.

Which keys may sign: the CAs in the directory now, and every CA an entry signed by one of them
vouches for (``cas``, PEM). A rollover vouches for the CAs before and after it, so entries of a
retired CA stay verifiable and a key that never belonged to this CA cannot start a chain.

Appended under the caller's CA lock, after the change it records is durable: a crash between
the two leaves a certificate the ledger does not know, which report names. No Ansible imports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field

from . import authority, pki, revocation
from .files import fsync_directory, read_file

LEDGER_FILE = "ledger.jsonl"
GENESIS = "0" * 64
EVENTS = ("started", "ca_created", "issued", "revoked", "rollover")


def path_of(ca_path: str) -> str:
    return os.path.join(ca_path, LEDGER_FILE)


def record(ca_path: str, event: str, fields: dict, issuer: pki.Issuer, now, vouch=()) -> dict:
    """Append one entry signed by issuer.key (a file or token key); the first entry of a directory
    that already issued is preceded by a ``started`` entry listing its store and revocations."""
    path = path_of(ca_path)
    lines = _lines(read_file(path) or b"")
    appended = []
    if not lines:  # what the event itself records is not part of what was there before
        before = _inventory(ca_path, skip={c["serial"] for c in fields.get("certificates", [])} | {r["serial"] for r in fields.get("revoked", [])})
        appended.append(_entry(1, GENESIS, "started", before, issuer, now, current_cas(ca_path)))
        lines = [appended[0]]
    entry = _entry(len(lines) + 1, _digest(lines[-1]), event, fields, issuer, now, vouch)
    appended.append(entry)
    _append(path, appended)
    return json.loads(entry)


def record_issuance(ca_path: str, outcomes, hosts: dict, issuer: pki.Issuer, now) -> None:
    """The certificates a run of bulk issuance issued or renewed (hosts: {name: inventory host})."""
    changed = [o for o in outcomes if o.status != "unchanged"]
    if changed:
        certificates = [dict(certificate_fields(o.name, o.after, hosts.get(o.name), o.status, o.reason),
                             replaces=pki.serial_text(o.before) if o.before is not None else None) for o in changed]
        record(ca_path, "issued", {"certificates": certificates}, issuer, now)


def record_revocations(ca_path: str, results, keys, now) -> None:
    """The certificates a run of mtls.fleet.crl revoked (not those already revoked)."""
    revoked = [{"serial": r["serial"], "name": r.get("name"), "reason": r["reason"], "issuer": r.get("issuer")}
               for r in results if r["status"] == "revoked"]
    if revoked:
        record(ca_path, "revoked", {"revoked": revoked}, authority.load_issuer(ca_path, keys), now)


def record_ca_created(ca_path: str, created: list, keys, now) -> None:
    """A new root or intermediate: the entry vouches for the directory's CAs, signed by the new issuer."""
    if created:
        record(ca_path, "ca_created", {"created": list(created)}, authority.load_issuer(ca_path, keys), now, vouch=current_cas(ca_path))


def record_rollover(ca_path: str, phase: str, state: str, actions: list, before: list, keys, now) -> None:
    """A rollover step, signed by the CA that issues after it, vouching for the CAs before and
    after it: a retired CA's entries stay verifiable, a new CA's entries are trusted."""
    record(ca_path, "rollover", {"phase": phase, "state": state, "actions": list(actions)}, authority.load_issuer(ca_path, keys), now,
           vouch=[*before, *current_cas(ca_path)])


def _entry(seq, prev, event, fields, issuer, now, vouch) -> bytes:
    body = dict(fields, seq=seq, prev=prev, event=event, time=f"{now:%Y-%m-%dT%H:%M:%SZ}", signer=pki.fingerprint(issuer.cert))
    if vouch:
        body["cas"] = sorted({pki.cert_to_pem(cert).decode() for cert in vouch})
    body["signature"] = base64.b64encode(pki.sign_data(issuer.key, _canonical(body))).decode()
    return _canonical(body)


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _lines(content: bytes) -> list:
    return content.split(b"\n")[:-1] if content.endswith(b"\n") else content.split(b"\n") if content else []


def _append(path, lines) -> None:
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, authority.PUBLIC_MODE)
    try:
        os.write(fd, b"".join(line + b"\n" for line in lines))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(os.path.dirname(path))


def _inventory(ca_path: str, skip=frozenset()) -> dict:
    """What the directory holds: its store's certificates (not generations in the making) and its
    revocations, without the serials in skip."""
    store = os.path.join(ca_path, authority.ISSUED)
    certificates = []
    for name in sorted(os.listdir(store)) if os.path.isdir(store) else []:
        pem = None if name.startswith(".") else read_file(os.path.join(store, name, authority.CERT_FILE))
        if pem:
            cert = pki.load_certificates(pem, name)[0]
            host = (read_file(os.path.join(store, name, authority.HOST_FILE)) or b"").decode().strip() or None
            if pki.serial_text(cert) not in skip:
                certificates.append(certificate_fields(name, cert, host, status="found"))
    revoked = [{"serial": entry["serial"], "name": entry.get("name"), "reason": entry.get("reason")}
               for entry in revocation.read_revocations(ca_path) if entry["serial"] not in skip]
    return {"certificates": certificates, "revoked": revoked}


def certificate_fields(name, cert, host, status, reason=None) -> dict:
    return {"name": name, "serial": pki.serial_text(cert), "host": host, "status": status, "reason": reason,
            "not_after": f"{pki.not_after(cert):%Y-%m-%dT%H:%M:%SZ}", "fingerprint_sha256": pki.fingerprint(cert)}


def current_cas(ca_path: str) -> list:
    """Every CA certificate of the directory now (active, next, previous, and the bundle's roots):
    the signers the verifier trusts first, and what a rollover step vouches for before and after it."""
    cas = [cert for cert, _key in authority.known_cas(ca_path, None)]
    bundle = read_file(os.path.join(ca_path, authority.BUNDLE))
    return cas + (pki.load_certificates(bundle, authority.BUNDLE) if bundle else [])


# ---------------------------------------------------------------------------------------------
# Verification


@dataclass
class Verdict:
    exists: bool
    intact: bool = True
    entries: int = 0
    since: str | None = None  # time of the first entry: intact since then
    last: str | None = None  # time of the last entry that verified
    broken_at: int | None = None  # the first line that does not verify
    problem: str | None = None
    issued: dict = field(default_factory=dict)  # serial -> {name, host, status, time}
    revoked: dict = field(default_factory=dict)  # serial -> {name, reason, time}
    unrecorded: list = field(default_factory=list)  # what the store holds and the ledger does not name

    def result(self) -> dict:
        return {"exists": self.exists, "intact": self.intact, "entries": self.entries, "since": self.since, "last": self.last,
                "broken_at": self.broken_at, "problem": self.problem, "unrecorded": self.unrecorded, "summary": self.summary()}

    def summary(self) -> str:
        if not self.exists:
            return "no ledger yet: it starts with the next issuance, revocation or CA change"
        if self.intact and self.unrecorded:
            return (f"chain intact since {self.since} ({self.entries} entries), but {len(self.unrecorded)} of the store's records are missing "
                    f"from it: {'; '.join(self.unrecorded[:3])}{' …' if len(self.unrecorded) > 3 else ''}")
        if self.intact:
            return f"intact since {self.since}: {self.entries} entries, the last at {self.last}"
        kept = f"lines 1-{self.broken_at - 1} verify (to {self.last})" if self.broken_at > 1 else "no line before it verifies"
        return f"BROKEN at line {self.broken_at}: {self.problem}; {kept}"


def verify(ca_path: str, inventory: dict | None = None) -> Verdict:
    """Check every line of the ledger; stop at the first that does not verify. inventory: the
    directory's store and revocations (_inventory), when the caller already read them."""
    content = read_file(path_of(ca_path))
    if content is None:
        return Verdict(exists=False)
    verdict = Verdict(exists=True)
    lines = _lines(content)
    torn = len(lines) if content and not content.endswith(b"\n") else None
    if torn:
        lines = lines[:-1]
    parsed = [_parse(line) for line in lines]
    signers = _trusted_signers(ca_path, [entry for entry in parsed if entry is not None])
    for number, (line, entry) in enumerate(zip(lines, parsed), 1):
        problem = _line_problem(entry, number, lines[number - 2] if number > 1 else None) or _signature_problem(entry, signers)
        if problem:
            return _broken(verdict, number, problem)
        _learn(verdict, entry)
        verdict.entries, verdict.last = number, entry["time"]
        verdict.since = verdict.since or entry["time"]
    if torn:
        return _broken(verdict, torn, "the last line is incomplete (a write was interrupted or the file was cut)")
    verdict.unrecorded = _unrecorded(inventory or _inventory(ca_path), verdict)
    return verdict


def _broken(verdict, number, problem) -> Verdict:
    verdict.intact, verdict.broken_at, verdict.problem = False, number, problem
    return verdict


def _parse(line) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not {"seq", "prev", "event", "time", "signer", "signature"} <= set(entry):
        return None
    return entry


def _line_problem(entry, number, previous) -> str | None:
    if entry is None:
        return "not a ledger entry (not JSON, or a field is missing)"
    if entry["seq"] != number:
        return f"entry {entry['seq']} stands at line {number}: a line before it was removed or added"
    if entry["prev"] != (GENESIS if previous is None else _digest(previous)):
        return f"its hash of line {number - 1} does not match: line {number - 1} was changed, or a line was removed"
    return None


def _trusted_signers(ca_path, entries) -> dict:
    """{fingerprint: certificate} of the keys allowed to sign: the directory's CAs, and every CA
    vouched for by an entry one of them signed (until nothing new is vouched for)."""
    trusted = {pki.fingerprint(cert): cert for cert in current_cas(ca_path)}
    pending = [entry for entry in entries if entry.get("cas")]
    grew = True
    while grew:
        grew = False
        for entry in list(pending):
            if entry["signer"] in trusted and _signature_problem(entry, trusted) is None:
                pending.remove(entry)
                for cert in _vouched(entry):
                    trusted.setdefault(pki.fingerprint(cert), cert)
                grew = True
    return trusted


def _vouched(entry) -> list:
    try:
        return [pki.load_certificates(pem.encode(), "ledger")[0] for pem in entry.get("cas", [])]
    except (pki.PKIError, AttributeError):
        return []


def _signature_problem(entry, signers) -> str | None:
    signer = signers.get(entry["signer"])
    if signer is None:
        return f"signed by a key that is not this CA's (certificate {str(entry['signer'])[:23]}…)"
    body = {k: v for k, v in entry.items() if k != "signature"}
    try:
        signature = base64.b64decode(entry["signature"], validate=True)
    except (ValueError, TypeError):
        return "its signature is not base64"
    if not pki.verify_data(signer, signature, _canonical(body)):
        return f"its signature does not verify with {pki.common_name_of(signer)!r}: the line was changed"
    return None


def _learn(verdict, entry) -> None:
    for cert in entry.get("certificates", []):
        if cert.get("replaces") and cert["replaces"] not in verdict.issued:  # issued before the ledger started
            verdict.issued[cert["replaces"]] = {"name": cert["name"], "host": cert.get("host"), "status": "replaced", "time": None}
        verdict.issued[cert["serial"]] = {"name": cert["name"], "host": cert.get("host"), "status": cert["status"], "time": entry["time"]}
    for revoked in entry.get("revoked", []):
        verdict.revoked[revoked["serial"]] = {"name": revoked.get("name"), "reason": revoked.get("reason"), "time": entry["time"]}


def _unrecorded(inventory, verdict) -> list:
    """The store's certificates and revocations the ledger does not name: lines cut from its end,
    or a change made without mtls.fleet."""
    found = []
    for cert in inventory["certificates"]:
        if cert["serial"] not in verdict.issued:
            found.append(f"certificate {cert['name']} (serial {cert['serial']}) is in the store but not in the ledger")
    for revoked in inventory["revoked"]:
        if revoked["serial"] not in verdict.revoked:
            found.append(f"the revocation of serial {revoked['serial']} is in revoked.json but not in the ledger")
    return found


def store_record(ca_path: str) -> dict:
    """What report compares served and installed certificates with: the ledger's verdict, every
    serial it says was issued or revoked, and the store's current certificate of each name."""
    inventory = _inventory(ca_path)
    verdict = verify(ca_path, inventory)
    current = {c["name"]: {"serial": c["serial"], "host": c["host"]} for c in inventory["certificates"]}
    issued = dict(verdict.issued) if verdict.exists else {}
    if not verdict.exists:  # a directory that has not issued since 0.4.0: its store is all it knows
        issued = {c["serial"]: {"name": name, "host": c["host"], "status": "found", "time": None} for name, c in current.items()}
    revoked = {r["serial"]: {"name": r["name"], "reason": r["reason"]} for r in inventory["revoked"]}
    return {"ledger": verdict.result(), "issued": issued, "revoked": revoked, "current": current}
