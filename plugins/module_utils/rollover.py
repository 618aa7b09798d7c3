# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CA rollover in three phases, recorded in the CA directory so that a re-run continues.

    trust    a new CA is made next to the active one (rollover/next/); the trust bundle holds
             both roots (a root rollover; an intermediate rollover keeps the same root)
    reissue  the new CA becomes the active one; the old one moves to rollover/previous/. The
             fleet's leaves are then re-issued by the rotation machinery.
    retire   the old root leaves the bundle (root), or the root revokes the old intermediate
             (intermediate). When the fleet is verified, the old CA's keys are destroyed and its
             certificates archived under retired/.

Each phase is begun on the CA host (the changes above), then the fleet is brought along and
checked, then the phase is marked verified. Beginning a phase again is harmless, so a run that
stopped anywhere is continued by running again. Probe identities from the old and the new CA
(rollover/probes/) let the playbook show which CA's clients every endpoint accepts.
No Ansible imports; every entry point takes ``now``.
"""

from __future__ import annotations

import datetime
import enum
import json
import os
import shutil
from dataclasses import asdict, dataclass, field

from . import authority, ledger, pki, revocation
from .custody import CAKeys
from .files import FileBatch, ensure_directory, read_file

PHASES = ("trust", "reissue", "retire")
STATE_FILE = os.path.join(authority.ROLLOVER, "state.json")
PROBES = os.path.join(authority.ROLLOVER, "probes")
RETIRED = "retired"
PROBE_NAME = "mtls-rollover-probe"
PROBE_LIFETIME = datetime.timedelta(days=7)


class Kind(str, enum.Enum):
    ROOT = "root"
    INTERMEDIATE = "intermediate"

    @classmethod
    def parse(cls, value) -> Kind:
        return pki.parse_member(cls, str(value).lower(), "kind", "rollover kind")

    @property
    def files(self) -> tuple:
        """The CA files this kind of rollover replaces."""
        pairs = ((authority.ROOT_CERT, authority.ROOT_KEY),) if self is Kind.ROOT else ()
        return (*pairs, (authority.INTERMEDIATE_CERT, authority.INTERMEDIATE_KEY))


@dataclass
class State:
    kind: str
    generation: int
    started: str
    verified: list = field(default_factory=list)
    finished: str | None = None

    @property
    def next_phase(self) -> str | None:
        return next((p for p in PHASES if p not in self.verified), None)

    @property
    def in_progress(self) -> bool:
        return self.finished is None


@dataclass
class Step:
    changed: bool = False
    actions: list = field(default_factory=list)


def read_state(path: str) -> State | None:
    raw = read_file(os.path.join(path, STATE_FILE))
    if raw is None:
        return None
    try:
        return State(**json.loads(raw))
    except (ValueError, TypeError):
        raise pki.PKIError(f"{os.path.join(path, STATE_FILE)} is not a rollover record; restore it from backup") from None


def status(path: str, now) -> dict:
    """What a report or a plan needs: the rollover in progress, if any, and the CAs involved."""
    state = read_state(path)
    out = {"in_progress": bool(state and state.in_progress), "state": asdict(state) if state else None,
           "next_phase": state.next_phase if state and state.in_progress else None, "cas": {}}
    for label, directory in (("active", path), ("next", os.path.join(path, authority.NEXT)), ("previous", os.path.join(path, authority.PREVIOUS))):
        found = {}
        for name, cert_file in (("root", authority.ROOT_CERT), ("intermediate", authority.INTERMEDIATE_CERT)):
            pem = read_file(os.path.join(directory, cert_file))
            if pem is not None:
                cert = pki.load_certificates(pem, os.path.join(directory, cert_file))[0]
                facts = pki.describe(cert, now)
                found[name] = {k: facts[k] for k in ("common_name", "serial", "not_after", "key_type", "fingerprint_sha256")}
        if found:
            out["cas"][label] = found
    return out


def begin(path: str, phase: str, kind: Kind | None, spec: authority.CASpec, keys: CAKeys, now, check_mode=False) -> Step:
    """Make the CA host's changes of phase (idempotent). Starts a rollover of kind when none is in progress."""
    if phase not in PHASES:
        raise pki.PKIError(f"phase: {phase!r} is not a rollover phase; use one of {', '.join(PHASES)}")
    state = read_state(path)
    if state is None or not state.in_progress:
        if kind is None:
            raise pki.PKIError("no CA rollover is in progress; start one with kind root or intermediate")
        state = _new_state(path, kind, keys, now)
    elif kind is not None and kind.value != state.kind:
        raise pki.PKIError(f"a {state.kind} rollover (generation {state.generation}) is in progress; finish it before starting a {kind.value} rollover")
    if phase != state.next_phase:
        verified_so_far = ", ".join(state.verified) or "none"
        raise pki.PKIError(f"phase {phase}: the {state.kind} rollover's next phase is {state.next_phase} (verified so far: {verified_so_far})")
    step = Step()
    before = ledger.current_cas(path)
    handler = {"trust": _begin_trust, "reissue": _begin_reissue, "retire": _begin_retire}[phase]
    handler(path, state, spec, keys, now, check_mode, step)
    if step.changed and not check_mode:
        _write_state(path, state)
        ledger.record_rollover(path, phase, "begun", step.actions, before, keys, now)
    return step


def verified(path: str, phase: str, keys: CAKeys, now, check_mode=False) -> Step:
    """Record that the fleet was brought along and checked for phase; after retire, finish."""
    state = read_state(path)
    if state is None or not state.in_progress:
        raise pki.PKIError("no CA rollover is in progress")
    if phase in state.verified:
        return Step()
    if phase != state.next_phase:
        raise pki.PKIError(f"phase {phase} cannot be verified before {state.next_phase}")
    step = Step(changed=True, actions=[f"record phase {phase} as verified"])
    state.verified.append(phase)
    before = ledger.current_cas(path)
    if phase == PHASES[-1]:
        step.actions += _finish(path, state, keys, now, check_mode)
    if not check_mode:
        _write_state(path, state)
        ledger.record_rollover(path, phase, "verified", step.actions, before, keys, now)
    return step


# ---------------------------------------------------------------------------------------------


def _new_state(path, kind, keys, now) -> State:
    root, _key = authority.read_ca_pair(path, authority.ROOT_CERT, authority.ROOT_KEY, keys)
    if root is None:
        raise pki.PKIError(f"{path} holds no CA ({authority.ROOT_CERT}); there is nothing to roll over")
    intermediate, _key = authority.read_ca_pair(path, authority.INTERMEDIATE_CERT, authority.INTERMEDIATE_KEY, keys)
    if kind is Kind.INTERMEDIATE and intermediate is None:
        raise pki.PKIError("kind intermediate: this CA has no intermediate (it signs with its root); roll over the root instead")
    # One counter for both CAs, so a new CA's name is never that of one still trusted.
    generation = max(authority.generation_of(cert) for cert in (root, intermediate) if cert is not None) + 1
    return State(kind=kind.value, generation=generation, started=f"{now:%Y-%m-%dT%H:%M:%SZ}")


def _begin_trust(path, state, spec, keys, now, check_mode, step):
    kind = Kind(state.kind)
    next_dir = os.path.join(path, authority.NEXT)
    root, root_key = authority.read_ca_pair(path, authority.ROOT_CERT, authority.ROOT_KEY, keys)
    new_root, new_root_key = (authority.read_ca_pair(next_dir, authority.ROOT_CERT, authority.ROOT_KEY, keys)
                              if kind is Kind.ROOT else (root, root_key))
    batch = FileBatch(keep_previous=False)
    if new_root is None:
        new_root_key, stored = keys.new(spec.key_type, f"{spec.common_name} G{state.generation}", dry_run=check_mode)
        new_root = pki.build_ca(f"{spec.common_name} G{state.generation}", new_root_key, spec.lifetime, now,
                                path_length=1, constraints=spec.name_constraints)
        _stage(batch, next_dir, authority.ROOT_CERT, authority.ROOT_KEY, new_root, stored)
        step.actions.append(f"create root CA '{pki.common_name_of(new_root)}' ({spec.key_type.value}) in {next_dir}")
    has_intermediate = kind is Kind.INTERMEDIATE or spec.intermediate
    new_issuer, new_issuer_key, new_chain = new_root, new_root_key, ()
    if has_intermediate:
        intermediate, intermediate_key = authority.read_ca_pair(next_dir, authority.INTERMEDIATE_CERT, authority.INTERMEDIATE_KEY, keys)
        if intermediate is None:
            intermediate_key, stored = keys.new(spec.key_type, f"{spec.intermediate_common_name} G{state.generation}",
                                                dry_run=check_mode)
            lifetime = min(spec.intermediate_lifetime, pki.not_after(new_root) - now)
            intermediate = pki.build_ca(f"{spec.intermediate_common_name} G{state.generation}", intermediate_key, lifetime, now,
                                        path_length=0, constraints=spec.name_constraints, issuer=new_root, issuer_key=new_root_key)
            _stage(batch, next_dir, authority.INTERMEDIATE_CERT, authority.INTERMEDIATE_KEY, intermediate, stored)
            step.actions.append(f"create intermediate CA '{pki.common_name_of(intermediate)}' under '{pki.common_name_of(new_root)}'")
        new_issuer, new_issuer_key, new_chain = intermediate, intermediate_key, (intermediate,)

    if kind is Kind.ROOT:
        _stage_bundle(batch, path, (root, new_root), step, "trust bundle: the current root and the new one")

    old = authority.load_issuer(path, keys)
    new = pki.Issuer(cert=new_issuer, key=new_issuer_key, chain=new_chain, roots=(new_root,))
    for label, issuer in (("old", old), ("new", new)):
        _stage_probe(batch, path, label, issuer, spec, now, step)
    _commit(batch, path, check_mode, step)


def _begin_reissue(path, state, spec, keys, now, check_mode, step):
    """Swap: the active CA files go to previous/, next/'s take their place. Ordered so that a
    crash at any point is finished by running again (previous/ is written before anything moves)."""
    next_dir, previous_dir = os.path.join(path, authority.NEXT), os.path.join(path, authority.PREVIOUS)
    if not os.path.isdir(next_dir):
        return  # already swapped
    names = [name for pair in Kind(state.kind).files for name in pair]
    staged = {name: read_file(os.path.join(next_dir, name)) for name in names}
    active = {name: read_file(os.path.join(path, name)) for name in names}
    if staged.get(authority.INTERMEDIATE_CERT) is None and staged.get(authority.ROOT_CERT) is None:
        raise pki.PKIError(f"{next_dir} holds no CA; run phase trust again (remove {next_dir} to make a new CA)")
    step.changed = True
    step.actions.append(f"make '{_name_in(staged)}' the issuing CA; keep '{_name_in(active)}' in {previous_dir} until retire")
    if check_mode:
        return
    if active != staged:
        ensure_directory(previous_dir, authority.DIRECTORY_MODE)
        if not os.listdir(previous_dir):
            save = FileBatch(keep_previous=False)
            for name, content in active.items():
                if content is not None:
                    save.add(os.path.join(previous_dir, name), content, _mode(name))
            save.commit()
        swap = FileBatch(keep_previous=False)
        for name in sorted(names, key=lambda n: not n.endswith("-key.pem")):  # keys before certificates
            if staged[name] is not None:
                swap.add(os.path.join(path, name), staged[name], _mode(name))
        swap.commit()
        for name in names:  # an intermediate the new CA does without
            if staged[name] is None and active[name] is not None:
                os.unlink(os.path.join(path, name))
    shutil.rmtree(next_dir)


def _begin_retire(path, state, spec, keys, now, check_mode, step):
    kind = Kind(state.kind)
    previous_dir = os.path.join(path, authority.PREVIOUS)
    if kind is Kind.ROOT:
        root, _key = authority.read_ca_pair(path, authority.ROOT_CERT, authority.ROOT_KEY, keys)
        batch = FileBatch(keep_previous=False)
        _stage_bundle(batch, path, (root,), step, "trust bundle: the new root only")
        _commit(batch, path, check_mode, step)
        return
    old = read_file(os.path.join(previous_dir, authority.INTERMEDIATE_CERT))
    if old is None:
        raise pki.PKIError(f"{previous_dir} holds no previous intermediate; restore it from backup")
    old_cert = pki.load_certificates(old, previous_dir)[0]
    if int(pki.serial_text(old_cert), 16) in revocation.revoked_serials(path):
        return
    step.changed = True
    step.actions.append(f"revoke the old intermediate '{pki.common_name_of(old_cert)}' (serial {pki.serial_text(old_cert)}) in the root's CRL")
    if check_mode:
        return
    root = authority.read_ca_pair(path, authority.ROOT_CERT, authority.ROOT_KEY, keys)[0]
    superseded = dict(revocation.target(old_cert, root, pki.common_name_of(old_cert)), reason=pki.RevocationReason.SUPERSEDED.value)
    revocation.record(path, [superseded], now)


def _finish(path, state, keys, now, check_mode) -> list:
    previous_dir = os.path.join(path, authority.PREVIOUS)
    retired = read_file(os.path.join(previous_dir, authority.INTERMEDIATE_CERT if state.kind == Kind.INTERMEDIATE.value else authority.ROOT_CERT))
    generation = authority.generation_of(pki.load_certificates(retired, previous_dir)[0]) if retired else state.generation - 1
    archive = os.path.join(path, RETIRED, f"G{generation}-{now:%Y%m%dT%H%M%SZ}")
    actions = [f"destroy the old CA's keys; archive its certificates in {archive}", "remove the rollover probes"]
    state.finished = f"{now:%Y-%m-%dT%H:%M:%SZ}"
    if check_mode:
        return actions
    if os.path.isdir(previous_dir):
        ensure_directory(os.path.dirname(archive), authority.DIRECTORY_MODE)
        ensure_directory(archive, authority.DIRECTORY_MODE)
        batch = FileBatch(keep_previous=False)
        for name in os.listdir(previous_dir):
            if name in (authority.ROOT_CERT, authority.INTERMEDIATE_CERT):
                batch.add(os.path.join(archive, name), read_file(os.path.join(previous_dir, name)), authority.PUBLIC_MODE)
        batch.commit()
        for name in (authority.ROOT_KEY, authority.INTERMEDIATE_KEY):
            keys.destroy(read_file(os.path.join(previous_dir, name)), os.path.join(previous_dir, name))
        shutil.rmtree(previous_dir)
    if os.path.isdir(os.path.join(path, PROBES)):
        shutil.rmtree(os.path.join(path, PROBES))
    return actions


def _stage(batch, directory, cert_name, key_name, cert, stored_key):
    batch.add(os.path.join(directory, key_name), stored_key, authority.PRIVATE_MODE)
    batch.add(os.path.join(directory, cert_name), pki.cert_to_pem(cert), authority.PUBLIC_MODE)


def _stage_bundle(batch, path, roots, step, what):
    pem = pki.chain_to_pem(roots)
    if batch.add(os.path.join(path, authority.BUNDLE), pem, authority.PUBLIC_MODE):
        step.actions.append(what)


def _stage_probe(batch, path, label, issuer, spec, now, step):
    """A short-lived client identity of one CA, for checking which CA's clients a host accepts."""
    directory = os.path.join(path, PROBES, label)
    pem = read_file(os.path.join(directory, "cert.pem"))
    if pem is not None:
        chain = pki.load_certificates(pem, directory)
        if pki.signed_by(chain[0], issuer.cert) and pki.not_after(chain[0]) - now > PROBE_LIFETIME / 2:
            return
    dns, uris = spec.name_constraints.dns, spec.name_constraints.uris  # a name the CA's constraints permit
    san = f"DNS:{PROBE_NAME}.{dns[0]}" if dns else f"URI:spiffe://{uris[0]}/{PROBE_NAME}" if uris else f"DNS:{PROBE_NAME}"
    probe_spec = pki.LeafSpec(name=PROBE_NAME, common_name=PROBE_NAME, sans=(san,), profile=pki.Profile.CLIENT, lifetime=PROBE_LIFETIME)
    key = pki.KeyType.ECDSA_P256.generate()
    leaf = pki.build_leaf(probe_spec, key.public_key(), issuer, now)
    batch.add(os.path.join(directory, "key.pem"), pki.key_to_pem(key), authority.PRIVATE_MODE)
    batch.add(os.path.join(directory, "cert.pem"), pki.chain_to_pem((leaf, *issuer.chain)), authority.PUBLIC_MODE)
    step.actions.append(f"probe identity of the {label} CA '{pki.common_name_of(issuer.cert)}'")


def _commit(batch, path, check_mode, step):
    if not batch.changes:
        return
    step.changed = True
    if check_mode:
        return
    for directory in sorted({os.path.dirname(p) for p in batch.changes}):
        parts = os.path.relpath(directory, path).split(os.sep)
        for depth in range(1, len(parts) + 1):  # every level 0700, not just the last
            ensure_directory(os.path.join(path, *parts[:depth]), authority.DIRECTORY_MODE)
    batch.commit()


def _write_state(path, state):
    ensure_directory(os.path.join(path, authority.ROLLOVER), authority.DIRECTORY_MODE)
    batch = FileBatch(keep_previous=False)
    batch.add(os.path.join(path, STATE_FILE), (json.dumps(asdict(state), indent=1) + "\n").encode(), authority.PRIVATE_MODE)
    batch.commit()


def _mode(name) -> int:
    return authority.PRIVATE_MODE if name.endswith("-key.pem") else authority.PUBLIC_MODE


def _name_in(files) -> str:
    pem = files.get(authority.INTERMEDIATE_CERT) or files.get(authority.ROOT_CERT)
    return pki.common_name_of(pki.load_certificates(pem, "CA")[0]) if pem else "?"
