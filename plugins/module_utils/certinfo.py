# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only inspection of installed certificates. No Ansible imports.

The module judges the files of the host it runs on (HostFiles). Its action plugin judges a
Snapshot instead: the same files read on the host by one shell command (snapshot_command) and
judged on the controller, where a host has no Python to start. A snapshot that cannot say what
the module would (a symlink, an unreadable file, a key openssl cannot read) raises Undecided,
and the module runs after all.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat

from . import pki, probe
from .files import FileError, read_file

ARGUMENT_SPEC = dict(
    certificates=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            name=dict(type="str"),
            path=dict(type="path", required=True),
            privatekey_path=dict(type="path"),
            subject_alt_name=dict(type="list", elements="str"),
            common_name=dict(type="str"),
            profile=dict(type="str"),
            key_type=dict(type="str"),
        ),
    ),
    ca_bundle_path=dict(type="path"),
    crl_path=dict(type="path"),
    renew_before=dict(type="str", default="33%"),
    endpoints=dict(type="list", elements="dict", default=[], options=probe.ENDPOINT_OPTIONS),
)


class Undecided(Exception):
    """A snapshot cannot tell what the host's own reading would."""


class HostFiles:
    """The files of the host this runs on."""

    @staticmethod
    def read(path):
        return read_file(path)

    @staticmethod
    def facts(path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": _name(pwd.getpwuid, st.st_uid), "group": _name(grp.getgrgid, st.st_gid)}

    @staticmethod
    def key(path):
        """The private key, or None when it is missing."""
        pem = read_file(path)
        return None if pem is None else pki.load_private_key(pem, path)


def report(params: dict, now, files=HostFiles) -> dict:
    """The module's result for validated params: every certificate's facts and verdict, and the CRLs'."""
    roots = load_bundle(params["ca_bundle_path"], files)
    renew_before = pki.RenewBefore.parse(params["renew_before"])
    reports, chains = [], []
    for entry in params["certificates"]:
        chains.append(_read_chain(entry["path"], files))
        try:
            reports.append(inspect(entry, chains[-1], roots, renew_before, now, files))
        except pki.PKIError as exc:
            raise pki.PKIError(f"certificate {entry.get('name') or entry['path']!r}: {exc}") from None
    crl = crl_facts(params["crl_path"], now, files) if params["crl_path"] else None
    cas = ca_facts(roots or (), chains, now)
    served = [dict(endpoint, label=endpoint["label"] or f"{endpoint['kind']} {endpoint['service']}:{endpoint['port']}",
                   **probe.served_certificate("127.0.0.1", endpoint["port"], endpoint["server_name"],
                                              postgresql=endpoint["kind"] == "postgresql")) for endpoint in params.get("endpoints") or []]
    return dict(changed=False, certificates=reports, cas=cas, served=served, **({"crl": crl} if crl else {}))


def ca_facts(roots, chains, now) -> list:
    """The CAs this host relies on, each once: the roots of its trust bundle and the intermediates
    its certificate files carry, soonest expiry first. A CA that expires takes every certificate
    under it along, so it is watched like one."""
    found = {}
    for certs in [roots] + [chain[1:] for chain in chains if isinstance(chain, list)]:
        for cert in certs:
            facts = pki.describe(cert, now)
            kept = ("subject", "fingerprint_sha256", "not_after", "not_after_timestamp", "days_left")
            found.setdefault(facts["fingerprint_sha256"], dict(
                {name: facts[name] for name in kept}, kind="root" if cert.subject == cert.issuer else "intermediate"))
    return sorted(found.values(), key=lambda ca: (ca["not_after_timestamp"], ca["subject"]))


def load_bundle(path: str | None, files=HostFiles):
    """The roots of a trust bundle, or None when no bundle is given."""
    if not path:
        return None
    pem = files.read(path)
    if pem is None:
        raise pki.PKIError(f"ca_bundle_path: {path} does not exist")
    return tuple(pki.load_certificates(pem, path))


def inspect(entry: dict, chain, roots, renew_before: pki.RenewBefore, now, files=HostFiles) -> dict:
    """Facts and the renewal verdict for one installed certificate (never key material), from its
    chain as _read_chain read it.

    entry: name, path, privatekey_path (optional) and, optionally, what the cert must say
    (subject_alt_name, common_name, profile, key_type); with no subject_alt_name nothing is compared.
    """
    path, key_path = entry["path"], entry.get("privatekey_path")
    info = {"name": entry.get("name") or path, "path": path, "privatekey_path": key_path, "exists": False}
    key_problem = None
    if key_path:
        info["privatekey"] = files.facts(key_path)
        if isinstance(chain, list):
            key_problem = _key_problem(chain[0], key_path, files)
            info["key_matches"] = key_problem is None
    if isinstance(chain, list):
        leaf = chain[0]
        info.update(pki.describe(leaf, now), exists=True, chain_length=len(chain), file=files.facts(path))
        if roots is not None:
            problem = pki.chain_problem(leaf, chain[1:], roots, now)
            info["chain_verified"], info["chain_problem"] = problem is None, problem
    spec = _expected_spec(entry, chain)
    verdict = pki.renewal_verdict(chain, key_problem, spec, (), roots, renew_before, now)
    info.update(renew=verdict.renew, reason=verdict.reason.value if verdict.reason else None, detail=verdict.detail)
    return info


def _read_chain(path, files):
    try:
        pem = files.read(path)
    except FileError as exc:
        return pki.PKIError(str(exc))
    if pem is None:
        return None
    try:
        return pki.load_certificates(pem, path)
    except pki.PKIError as exc:
        return exc


def _key_problem(leaf, key_path, files):
    try:
        key = files.key(key_path)
        if key is None:
            return f"{key_path} is missing"
        return pki.key_mismatch(leaf, key)
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


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def crl_facts(path: str, now, files=HostFiles) -> dict:
    """The installed CRLs: whether they exist and the earliest next update (when nginx would
    start refusing every client if nothing newer arrives)."""
    pem = files.read(path)
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


# Reads each file on the host with sh, stat, cat and openssl: no Python starts there. A key's
# private half stays on the host: openssl prints its public half, which is what a match needs.
_SNAPSHOT_SCRIPT = """\
m={marker}
r() {{ printf '\\n%s %s %s\\n' "$m" "$1" "$2"; }}
f() {{
  if [ -L "$2" ] || {{ [ -e "$2" ] && [ ! -f "$2" ]; }}; then r "$1" other
  elif [ ! -e "$2" ]; then r "$1" missing
  elif ! s=$(stat -c '%a %u %g %U %G' -- "$2"); then r "$1" other
  elif [ "$3" = key ]; then
    if p=$(openssl pkey -in "$2" -pubout -passin pass: 2>/dev/null); then r "$1" "key $s"; printf '%s\\n' "$p"; else r "$1" other; fi
  else r "$1" "file $s"; cat -- "$2" || r "$1" other
  fi
}}
{reads}
printf '\\n%s end\\n' "$m"
"""


def snapshot_paths(params: dict) -> list:
    """(path, is_key) for every file report() reads with params."""
    paths = [(p, False) for p in (params["ca_bundle_path"], params["crl_path"]) if p]
    for entry in params["certificates"]:
        paths.append((entry["path"], False))
        if entry.get("privatekey_path"):
            paths.append((entry["privatekey_path"], True))
    return paths


def snapshot_command(paths, marker: str) -> str:
    """A POSIX sh script printing one record per (path, is_key) for Snapshot.parse."""
    reads = "\n".join(f"f {index} {shlex.quote(path)} {'key' if is_key else 'file'}" for index, (path, is_key) in enumerate(paths))
    return _SNAPSHOT_SCRIPT.format(marker=shlex.quote(marker), reads=reads)


class Snapshot:
    """The files of a host as snapshot_command printed them."""

    def __init__(self, records: dict):
        self._records = records  # path -> (status, facts, content)

    @classmethod
    def parse(cls, output: bytes, marker: str, paths) -> "Snapshot":
        chunks = output.split(b"\n" + marker.encode() + b" ")
        if len(chunks) < 2 or chunks[-1].strip() != b"end":
            raise Undecided("the host's output is incomplete")
        records = {}
        for chunk in chunks[1:-1]:
            header, _newline, content = chunk.partition(b"\n")
            index, status, *facts = header.decode("utf-8", "replace").split(" ")
            if not index.isdigit() or int(index) >= len(paths) or len(facts) not in (0, 5):
                raise Undecided(f"the host's output is not a snapshot: {header[:80]!r}")
            records[paths[int(index)][0]] = (status, facts, content)  # a later "other" overrides
        if len(records) != len({path for path, _is_key in paths}):
            raise Undecided("the host did not read every file")
        return cls(records)

    def _record(self, path, *statuses):
        status, facts, content = self._records.get(path, ("unread", (), b""))
        if status not in statuses:
            raise Undecided(f"{path}: {status}")
        return status, facts, content

    def read(self, path):
        status, _facts, content = self._record(path, "missing", "file")
        return None if status == "missing" else content

    def facts(self, path):
        status, facts, _content = self._record(path, "missing", "file", "key")
        if status == "missing":
            return None
        mode, uid, gid, user, group = facts
        return {"mode": f"{int(mode, 8):04o}", "owner": uid if user == "UNKNOWN" else user, "group": gid if group == "UNKNOWN" else group}

    def key(self, path):
        """The key's public half (enough to match it), or None when it is missing."""
        status, _facts, content = self._record(path, "missing", "key")
        return None if status == "missing" else pki.load_public_key(content, path)
