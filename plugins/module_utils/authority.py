# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA directory on the CA host, and bulk issuance into its store.

Layout of a CA directory (0700):
    root-ca.pem, root-ca-key.pem                  self-signed root
    intermediate-ca.pem, intermediate-ca-key.pem  optional issuing CA under the root
    ca-bundle.pem                                 the trust anchors hosts install
    issued/<name>/cert.pem, key.pem               leaf + intermediates, and its key (central mode)
    issued/<name>/host                            the inventory host the name belongs to (requests with a host)
    revoked.json, crl.pem                         revocations, and the CRLs of every CA (revocation.py)
    rollover/                                     a CA rollover in progress (rollover.py)
No Ansible imports; every entry point takes ``now``.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import generations, pki
from .custody import CAKeys
from .files import FileBatch, FileError, ensure_directory, fsync_directory, read_file

ROOT_CERT, ROOT_KEY = "root-ca.pem", "root-ca-key.pem"
INTERMEDIATE_CERT, INTERMEDIATE_KEY = "intermediate-ca.pem", "intermediate-ca-key.pem"
BUNDLE = "ca-bundle.pem"
ISSUED = "issued"
CERT_FILE, KEY_FILE, HOST_FILE = "cert.pem", "key.pem", "host"
PRIVATE_MODE, PUBLIC_MODE, DIRECTORY_MODE = 0o600, 0o644, 0o700


# ---------------------------------------------------------------------------------------------
# The CA


@dataclass(frozen=True)
class CASpec:
    common_name: str = "mtls.fleet root CA"
    key_type: pki.KeyType = pki.KeyType.ECDSA_P256
    lifetime: datetime.timedelta = datetime.timedelta(days=3650)
    intermediate: bool = False
    intermediate_common_name: str = "mtls.fleet intermediate CA"
    intermediate_lifetime: datetime.timedelta = datetime.timedelta(days=1825)
    name_constraints: pki.NameConstraints = pki.NameConstraints()


@dataclass
class CAResult:
    changed: bool
    created: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    root: object = None
    intermediate: object = None


def fleet_roots(reads) -> dict:
    """{host: [the root certificates its bundle holds]} from the hosts' bundles as read by slurp, or
    by raw printing the file when it exists (as the mtls_ca role does).

    A missing file is a host that trusts nothing yet; an unreachable host is None (unknown). A
    bundle that cannot be read or parsed is an error: reading it as "trusts nothing" could make a
    new root nobody trusts.
    """
    roots = {}
    for read in reads:
        if read.get("skipped"):
            continue
        host = str(read.get("item", "?"))
        if read.get("unreachable"):
            roots[host] = None
            continue
        pem = _bundle_read(host, read)
        if pem is not None:
            certs = pki.load_certificates(pem, f"{host}'s ca-bundle.pem")
            roots[host] = [cert for cert in certs if cert.issuer == cert.subject]
    return roots


def _bundle_read(host, read):
    """The bundle's PEM, or None when the host has no bundle."""
    if "stdout" in read and "rc" in read:  # raw
        if read["rc"] == 0:
            # A command with no input gets a terminal from ssh, which prints each newline as CRLF.
            pem = read["stdout"].replace("\r\n", "\n").encode()
            return pem if pem.strip() else None
        problem = (read.get("stderr") or read.get("stdout") or f"exit code {read['rc']}").strip()
    elif read.get("content"):  # slurp
        return base64.b64decode(read["content"])
    elif str(read.get("msg", "")).lower().startswith("file not found"):  # slurp: "file not found" before 2.17
        return None
    else:
        problem = read.get("msg", "no content")
    raise pki.PKIError(f"cannot tell which root {host} trusts ({problem}); fix that (the play may "
                       "need become: true) and run again: a CA is only created when the fleet trusts none yet")


def refuse_silent_new_root(path: str, fleet_roots: dict, new_root: bool) -> None:
    """A CA directory without a CA while hosts already trust a root means the CA was lost (a
    disk, a throwaway container, a wrong path): a new root would be trusted by none of them.
    A host that could not be read may be one of them, so it stops the run too.
    fleet_roots: {host: [root certificates its bundle holds], or None when unknown}."""
    if ca_exists(path) or new_root:
        return
    trusting = {host: roots for host, roots in sorted(fleet_roots.items()) if roots}
    if not trusting:
        unknown = sorted(host for host, roots in fleet_roots.items() if roots is None)
        if unknown:
            raise pki.PKIError(
                f"{path} holds no CA, and which root {_some(unknown)} trust is unknown: they could not be reached. If they "
                "trust a root, a new one would be trusted by none of them, so nothing was changed. Bring them back and run "
                "again, or restore the CA directory from its backup (mtls.fleet.ca_restore); if this is a new fleet whose "
                "hosts trust no root yet, set mtls_ca_new_root=true"
            )
        return
    roots = {pki.fingerprint(cert): cert for found in trusting.values() for cert in found}
    named = _some(list(trusting))
    described = "; ".join(f"'{pki.common_name_of(cert)}' (SHA-256 {fp})" for fp, cert in roots.items())
    raise pki.PKIError(
        f"{path} holds no CA, but {named} already trust {described}. A new root would be trusted by none of "
        "them, so nothing was changed. Restore the CA directory from its backup (playbook mtls.fleet.ca_restore, "
        "docs/backup.md), or check mtls_ca_host and mtls_ca_path. To start a new CA deliberately, set "
        "mtls_ca_new_root=true: the hosts then trust the old and the new root until you retire the old one"
    )


def _some(hosts) -> str:
    return ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")


def ensure_ca(path: str, spec: CASpec, keys: CAKeys, now, check_mode=False, keep_trusting=()) -> CAResult:
    """Create what is missing of the CA; never replace an existing CA (that is a rollover).

    keep_trusting: roots a new CA's bundle keeps beside its own (a fleet that trusted a lost CA).
    """
    result = CAResult(changed=False)
    batch = FileBatch()
    root, root_key = read_ca_pair(path, ROOT_CERT, ROOT_KEY, keys)
    stored_keys = {}
    if root is None:
        if keep_trusting:
            kept = {pki.fingerprint(cert): cert for cert in keep_trusting}
            result.warnings.append(
                f"a new root was created while the fleet trusts {', '.join(repr(pki.common_name_of(c)) for c in kept.values())}; "
                f"{os.path.join(path, BUNDLE)} keeps trusting them so services keep accepting each other while site re-issues. "
                "When the report shows every host on the new CA, remove them from it and run site again"
            )
        root_key, stored_keys[ROOT_KEY] = keys.new(spec.key_type, spec.common_name, dry_run=check_mode)
        root = pki.build_ca(spec.common_name, root_key, spec.lifetime, now, path_length=1, constraints=spec.name_constraints)
        result.created.append("root")
    else:
        result.warnings += _drift(root, spec.common_name, spec)
    result.root = root

    if spec.intermediate:
        intermediate, intermediate_key = read_ca_pair(path, INTERMEDIATE_CERT, INTERMEDIATE_KEY, keys)
        if intermediate is not None and not pki.signed_by(intermediate, root):
            raise pki.PKIError(
                f"{os.path.join(path, INTERMEDIATE_CERT)} was not issued by {os.path.join(path, ROOT_CERT)}; "
                "restore the matching root or remove the intermediate files to issue a new one"
            )
        if intermediate is None:
            intermediate_key, stored_keys[INTERMEDIATE_KEY] = keys.new(
                spec.key_type, spec.intermediate_common_name, dry_run=check_mode)
            lifetime = min(spec.intermediate_lifetime, pki.not_after(root) - now)
            intermediate = pki.build_ca(
                spec.intermediate_common_name, intermediate_key, lifetime, now, path_length=0,
                constraints=spec.name_constraints, issuer=root, issuer_key=root_key,
            )
            result.created.append("intermediate")
        else:
            result.warnings += _drift(intermediate, spec.intermediate_common_name, spec)
        result.intermediate = intermediate

    bundle_needs_root = _bundle_missing_root(path, root)
    result.changed = bool(result.created) or bundle_needs_root
    if result.changed and not check_mode:
        ensure_directory(path, DIRECTORY_MODE)
        if "root" in result.created:
            batch.add(os.path.join(path, ROOT_KEY), stored_keys[ROOT_KEY], PRIVATE_MODE)
            batch.add(os.path.join(path, ROOT_CERT), pki.cert_to_pem(root), PUBLIC_MODE)
        if "intermediate" in result.created:
            batch.add(os.path.join(path, INTERMEDIATE_KEY), stored_keys[INTERMEDIATE_KEY], PRIVATE_MODE)
            batch.add(os.path.join(path, INTERMEDIATE_CERT), pki.cert_to_pem(result.intermediate), PUBLIC_MODE)
        if bundle_needs_root:
            bundle = read_file(os.path.join(path, BUNDLE)) or b""
            if keep_trusting and "root" in result.created:
                bundle = pki.chain_to_pem(list({pki.fingerprint(c): c for c in keep_trusting}.values()))
            batch.add(os.path.join(path, BUNDLE), bundle + pki.cert_to_pem(root), PUBLIC_MODE)
        batch.commit()
    return result


def read_ca_pair(path, cert_name, key_name, keys: CAKeys):
    cert_path, key_path = os.path.join(path, cert_name), os.path.join(path, key_name)
    cert_pem, key_pem = read_file(cert_path), read_file(key_path)
    if cert_pem is None and key_pem is None:
        return None, None
    if cert_pem is None or key_pem is None:
        missing = cert_path if cert_pem is None else key_path
        raise pki.PKIError(f"{missing} is missing while its pair exists; restore it from backup (a new CA would break every issued certificate)")
    cert = pki.load_certificates(cert_pem, cert_path)[0]
    if keys is None:
        return cert, None
    key = keys.load(key_pem, key_path)
    if pki.key_mismatch(cert, key):
        raise pki.PKIError(f"{key_path} does not match {cert_path}; restore the pair from backup")
    return cert, key


GENERATION = re.compile(r" G(\d+)$")


def base_name(common_name: str) -> str:
    """A CA's configured name without the generation a rollover appends (' G2', ' G3', ...)."""
    return GENERATION.sub("", common_name)


def generation_of(cert) -> int:
    match = GENERATION.search(pki.common_name_of(cert))
    return int(match.group(1)) if match else 1


def _drift(cert, common_name, spec: CASpec) -> list:
    found = []
    if base_name(pki.common_name_of(cert)) != common_name:
        found.append(f"CA '{pki.common_name_of(cert)}' exists; its common name differs from {common_name!r} (kept; change it with a CA rollover)")
    if pki.KeyType.of(cert.public_key()) is not spec.key_type:
        found.append(f"CA '{pki.common_name_of(cert)}' has key type {pki.KeyType.of(cert.public_key()).value} (kept; change it with a CA rollover)")
    if pki.NameConstraints.of(cert) != spec.name_constraints:
        found.append(f"CA '{pki.common_name_of(cert)}' has different name constraints (kept; change them with a CA rollover)")
    return found


def _bundle_missing_root(path, root) -> bool:
    pem = read_file(os.path.join(path, BUNDLE))
    return pem is None or pki.cert_to_pem(root) not in pem


ROLLOVER = "rollover"
NEXT, PREVIOUS = os.path.join(ROLLOVER, "next"), os.path.join(ROLLOVER, "previous")


def known_cas(path: str, keys: CAKeys) -> list:
    """(certificate, key) of every CA this directory signs for: the active root and intermediate,
    and during a rollover the next or previous ones. A CRL is due from each of them."""
    found, seen = [], set()
    for directory in (path, os.path.join(path, NEXT), os.path.join(path, PREVIOUS)):
        for cert_name, key_name in ((ROOT_CERT, ROOT_KEY), (INTERMEDIATE_CERT, INTERMEDIATE_KEY)):
            cert, key = read_ca_pair(directory, cert_name, key_name, keys)
            if cert is not None and pki.fingerprint(cert) not in seen:
                seen.add(pki.fingerprint(cert))
                found.append((cert, key))
    return found


def no_ca_message(path: str) -> str:
    return (f"{path} holds no CA ({ROOT_CERT}). If the fleet already has one, restore this directory from its backup "
            "(playbook mtls.fleet.ca_restore, docs/backup.md) or check mtls_ca_host and mtls_ca_path; a new fleet gets "
            "its CA from the site playbook")


def ca_exists(path: str) -> bool:
    return os.path.lexists(os.path.join(path, ROOT_CERT))


def load_issuer(path: str, keys: CAKeys | None) -> pki.Issuer:
    """The issuing CA of a CA directory: the intermediate if there is one, else the root.

    keys None: its certificates only (no key is read, no passphrase or token is needed), enough to
    judge what is due but not to sign.
    """
    root, root_key = read_ca_pair(path, ROOT_CERT, ROOT_KEY, keys)
    if root is None:
        raise pki.PKIError(no_ca_message(path))
    bundle_pem = read_file(os.path.join(path, BUNDLE))
    roots = tuple(pki.load_certificates(bundle_pem, os.path.join(path, BUNDLE))) if bundle_pem else (root,)
    intermediate, intermediate_key = read_ca_pair(path, INTERMEDIATE_CERT, INTERMEDIATE_KEY, keys)
    if intermediate is not None:
        return pki.Issuer(cert=intermediate, key=intermediate_key, chain=(intermediate,), roots=roots)
    return pki.Issuer(cert=root, key=root_key, chain=(), roots=roots)


# ---------------------------------------------------------------------------------------------
# Bulk issuance


@dataclass(frozen=True)
class Request:
    spec: pki.LeafSpec
    csr: object = None  # x509 CSR of the key the host serves with: the key lives there and never reaches the CA
    next_csr: object = None  # x509 CSR of the key the host keeps ready for its next certificate
    rotate_key: bool = True
    force: bool = False
    host: str | None = None  # the inventory host the certificate is for; no other host's request may take its name

    @property
    def on_host(self) -> bool:
        return self.csr is not None or self.next_csr is not None


REQUEST_FIELDS = ("name", "common_name", "subject_alt_name", "profile", "key_type", "lifetime", "renew_before", "rotate_key", "csr",
                  "next_csr", "force", "host")


def parse_requests(raw_requests, defaults: dict) -> list:
    """Turn raw request dicts into Requests; one PKIError that lists every bad field of every one."""
    errors, requests, seen = [], [], {}
    for index, raw in enumerate(raw_requests):
        name = raw.get("name")
        label = f"certificate {name!r}" if name else f"certificates[{index}]"
        try:
            request = _parse_request(raw, defaults)
        except pki.PKIError as exc:
            errors.append(f"{label}: {exc}")
            continue
        requests.append(request)
        if name in seen:
            errors.append(f"{label}: name is used twice ({_whose(seen[name])} and {_whose(request)}); every certificate needs its own "
                          "name: rename one of the services (or hosts) so that their <host>-<service> names differ")
        seen[name] = request
    if errors:
        raise pki.PKIError("; ".join(errors))
    return requests


def _parse_request(raw, defaults) -> Request:
    unknown = set(raw) - set(REQUEST_FIELDS)
    if unknown:
        raise pki.PKIError(f"unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(REQUEST_FIELDS)}")
    value = {k: raw.get(k) if raw.get(k) is not None else defaults.get(k) for k in REQUEST_FIELDS}
    name = str(value["name"] or "")
    if not pki.SAFE_NAME.fullmatch(name):
        raise pki.PKIError(f"name: {name!r} must start with a letter or digit and hold only letters, digits, '.', '_' and '-'")
    csr, next_csr = (pki.load_csr(value[field].encode() if isinstance(value[field], str) else value[field], field) if value[field] else None
                     for field in ("csr", "next_csr"))
    wanted = next_csr or csr  # the host makes its next key of the type it was asked for
    key_type = pki.KeyType.of(wanted.public_key()) if wanted else pki.KeyType.parse(value["key_type"] or "ecdsa-p256")
    spec = pki.LeafSpec(
        name=name,
        common_name=pki.check_identity(str(value["common_name"] or name)),
        sans=tuple(value["subject_alt_name"] or ()),
        profile=pki.Profile.parse(value["profile"] or "service"),
        key_type=key_type,
        lifetime=pki.parse_duration(value["lifetime"] or pki.DEFAULT_LEAF_LIFETIME, "lifetime"),
        renew_before=pki.RenewBefore.parse(value["renew_before"] or pki.DEFAULT_RENEW_BEFORE),
    )
    if spec.renew_before.window(spec.lifetime) >= spec.lifetime:
        raise pki.PKIError(f"renew_before ({value['renew_before'] or pki.DEFAULT_RENEW_BEFORE}) must be shorter than lifetime "
                           f"({value['lifetime'] or pki.DEFAULT_LEAF_LIFETIME}), or every run renews the certificate")
    return Request(spec=spec, csr=csr, next_csr=next_csr, force=bool(value["force"]),
                   rotate_key=bool(value["rotate_key"]) if value["rotate_key"] is not None else True,
                   host=str(value["host"]) if value["host"] else None)


def _whose(request: Request) -> str:
    service = f"service {request.spec.common_name}"
    return f"host {request.host}'s {service}" if request.host else service


def _owner_problems(store, requests) -> list:
    """A request whose name the store already keeps for another host would take that host's
    certificate (and key) over, --limit or not. The store knows the owner of every name issued
    for a host (issued/<name>/host); an entry written before it did is known by its certificate's
    common name, which is the service name."""
    problems = []
    for request in requests:
        if request.host is None:
            continue
        entry = generations.Generations(os.path.join(store, request.spec.name), DIRECTORY_MODE)
        try:
            owner = entry.read(HOST_FILE)
            if owner is not None:
                owner = owner.decode().strip()
                if owner == request.host:
                    continue
                holder = f"host {owner}"
            else:
                pem = entry.read(CERT_FILE)
                cert = pki.load_certificates(pem, request.spec.name)[0] if pem else None
                if cert is None or pki.common_name_of(cert) == request.spec.common_name:
                    continue
                holder = f"service {pki.common_name_of(cert)} of another host"
        except (FileError, pki.PKIError, UnicodeDecodeError):
            continue  # a damaged entry: the verdict replaces it, for the host that asks
        problems.append(
            f"certificate {request.spec.name!r}: the CA store keeps this name for {holder}; {_whose(request)} would take it over. "
            "Rename the service (or the host) so that its <host>-<service> name differs"
        )
    return problems


@dataclass
class Outcome:
    name: str
    status: str  # issued | renewed | unchanged
    reason: str | None
    detail: str
    cert_path: str
    key_path: str | None
    before: object = None  # the certificate found, if any
    after: object = None  # the certificate now in place (the same one when unchanged)
    cert_pem: bytes | None = None

    def result(self, return_content=False) -> dict:
        cert = self.after
        out = {
            "name": self.name, "status": self.status, "reason": self.reason, "detail": self.detail,
            "serial": pki.serial_text(cert) if cert else None,
            "not_after": f"{pki.not_after(cert):%Y-%m-%dT%H:%M:%SZ}" if cert else None,
            "fingerprint_sha256": pki.fingerprint(cert) if cert else None,
            "cert_path": self.cert_path, "key_path": self.key_path,
        }
        if return_content:
            out["certificate"] = self.cert_pem.decode() if self.cert_pem else None
        return out


def issue(store: str, requests, issuer: pki.Issuer, policy: pki.Policy, now, check_mode=False, force=False, revoked=frozenset(),
          renew_revoked=True) -> list:
    """Decide and (re)issue every request in one pass; write nothing unless all are valid.

    revoked: the serials the CA revoked. Their certificates are renewed only with renew_revoked
    (a rollout run by a person who fixed the host), never by a routine rotation.

    Certificates that are due are built in memory first. Each certificate's directory in the
    store is a generation (generations.py): its key and certificate are written beside the ones
    in place and switched in one rename, after every generation of the run was written, so a bad
    request or a crash never leaves a key with a certificate it does not belong to.
    """
    _check_policy(store, requests, issuer, policy, now)
    decided = [_issue_one(store, request, issuer, now, force, revoked, renew_revoked) for request in requests]
    outcomes = [outcome for outcome, _files in decided]
    if check_mode:  # a renewal that was only planned has no certificate yet
        for outcome in outcomes:
            if outcome.status != "unchanged":
                outcome.after, outcome.cert_pem = None, None
        return outcomes
    ensure_directory(store, DIRECTORY_MODE)
    generations.remove_leftovers(store, DIRECTORY_MODE)
    due = [(generations.Generations(os.path.join(store, outcome.name), DIRECTORY_MODE), files) for outcome, files in decided if files]
    written = []
    try:
        # Concurrent fsyncs share journal commits (see files.py): a mass renewal costs one sync, not thousands.
        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [(store_entry, pool.submit(store_entry.write, files)) for store_entry, files in due]
        written = [(entry, future.result()) for entry, future in futures if future.exception() is None]
        for _entry, future in futures:
            if future.exception() is not None:
                raise future.exception()
    except BaseException:
        for _entry, generation in written:
            shutil.rmtree(generation, ignore_errors=True)
        raise
    for entry, generation in written:
        entry.switch_to(generation, sync=False)
    fsync_directory(store)  # every switch above durable at once
    return outcomes


def unchanged_outcomes(store: str, requests, issuer: pki.Issuer, policy: pki.Policy, now, force=False, revoked=frozenset(),
                       renew_revoked=True) -> list | None:
    """The outcomes of issue() when no request is due, else None (from the first due one on,
    nothing more is read). The issuer needs no key: nothing is signed."""
    _check_policy(store, requests, issuer, policy, now)
    outcomes = []
    for request in requests:
        kept, _verdict = _judge(store, request, issuer, now, force, revoked, renew_revoked)
        if kept is None:
            return None
        outcomes.append(kept)
    return outcomes


def plan_without_ca(store: str, requests) -> list:
    """Check mode before the CA exists (a first rollout): every request would be issued."""
    return [
        Outcome(r.spec.name, "issued", pki.Reason.MISSING.value, "the CA does not exist yet (check mode)",
                os.path.join(store, r.spec.name, CERT_FILE), None if r.on_host else os.path.join(store, r.spec.name, KEY_FILE),
                None, None)
        for r in requests
    ]


def _check_policy(store, requests, issuer, policy, now):
    errors = [f"certificate {r.spec.name!r}: {p}" for r in requests for p in policy.violations(r.spec, issuer, now)]
    errors += _owner_problems(store, requests)
    if errors:
        raise pki.PKIError("; ".join(errors))


def _judge(store, request: Request, issuer, now, force, revoked, renew_revoked) -> tuple:
    """(the Outcome if the certificate in the store stays, else None; what renewing needs to know)."""
    spec = request.spec
    directory = os.path.join(store, spec.name)
    cert_path = os.path.join(directory, CERT_FILE)
    key_path = None if request.on_host else os.path.join(directory, KEY_FILE)
    existing_pem, chain, key = _read_existing(cert_path, key_path)
    if request.on_host:
        key_problem = _host_key_problem(chain, request)
    elif isinstance(key, pki.PKIError):
        key_problem, key = str(key), None
    else:
        key_problem = _key_problem(chain, key, "the private key does not match the certificate")
    verdict = pki.renewal_verdict(chain, key_problem, spec, issuer.chain, issuer.roots, spec.renew_before, now, force or request.force,
                                  issuing_ca=issuer.cert, revoked=revoked)
    before = chain[0] if isinstance(chain, list) else None
    if verdict.reason is pki.Reason.REVOKED and not renew_revoked:
        return Outcome(spec.name, "unchanged", verdict.reason.value, f"{verdict.detail}; kept until mtls.fleet.site re-issues it",
                       cert_path, key_path, before, before, existing_pem), None
    if not verdict.renew:
        return Outcome(spec.name, "unchanged", None, verdict.detail, cert_path, key_path, before, before, existing_pem), None
    return None, _Due(verdict, chain, key, cert_path, key_path, before)


@dataclass(frozen=True)
class _Due:
    verdict: pki.Verdict
    chain: object
    key: object
    cert_path: str
    key_path: str | None
    before: object


def _issue_one(store, request: Request, issuer, now, force, revoked, renew_revoked) -> tuple:
    """(Outcome, the files of its new generation or None)."""
    kept, due = _judge(store, request, issuer, now, force, revoked, renew_revoked)
    if kept is not None:
        return kept, None
    spec, key, key_path = request.spec, due.key, due.key_path
    files = {}
    if request.on_host:
        public_key = _host_key_to_certify(request, spec)
    else:
        keep_key = not request.rotate_key and key is not None and pki.KeyType.of(key) is spec.key_type
        private_key = key if keep_key else spec.key_type.generate()
        files[KEY_FILE] = (read_file(key_path) if keep_key else pki.key_to_pem(private_key), PRIVATE_MODE)
        public_key = private_key.public_key()
    leaf = pki.build_leaf(spec, public_key, issuer, now)
    cert_pem = pki.chain_to_pem((leaf, *issuer.chain))
    files[CERT_FILE] = (cert_pem, PUBLIC_MODE)
    if request.host is not None:
        files[HOST_FILE] = (f"{request.host}\n".encode(), PUBLIC_MODE)
    status = "issued" if due.chain is None else "renewed"  # a corrupt file is replaced too
    return Outcome(spec.name, status, due.verdict.reason.value, due.verdict.detail, due.cert_path, key_path, due.before, leaf, cert_pem), files


def _read_existing(cert_path, key_path):
    """(cert file bytes, chain or None or PKIError, key or None or PKIError), as the verdict wants them."""
    try:
        cert_pem = read_file(cert_path)
    except FileError as exc:
        raise pki.PKIError(str(exc)) from None
    chain = None
    if cert_pem is not None:
        try:
            chain = pki.load_certificates(cert_pem, cert_path)
        except pki.PKIError as exc:
            chain = exc
    key = None
    if key_path is not None:
        key_pem = read_file(key_path)
        if key_pem is None:
            key = pki.PKIError(f"{key_path} is missing")
        else:
            try:
                key = pki.load_private_key(key_pem, key_path)
            except pki.PKIError as exc:
                key = exc
    return cert_pem, chain, key


def _host_key_problem(chain, request: Request):
    """Keys on hosts: the certificate in the store is fine for either of the host's keys (it may be
    for the next key when the host's rollout of it failed or is still to come)."""
    keys = [csr.public_key() for csr in (request.csr, request.next_csr) if csr is not None]
    if not isinstance(chain, list) or any(not pki.key_mismatch(chain[0], key) for key in keys):
        return None
    return "the certificate is for neither of the host's keys (the host made new ones)"


def _host_key_to_certify(request: Request, spec):
    """A renewal certifies the host's next key (a new key at every renewal, as with central keys),
    unless keys are kept (rotate_key false) and the key in use is still of the wanted type."""
    current = request.csr.public_key() if request.csr is not None else None
    keep = not request.rotate_key and current is not None and pki.KeyType.of(current) is spec.key_type
    if keep or request.next_csr is None:
        return current
    return request.next_csr.public_key()


def _key_problem(chain, key, message):
    if not isinstance(chain, list) or key is None:
        return None
    return message if pki.key_mismatch(chain[0], key) else None
