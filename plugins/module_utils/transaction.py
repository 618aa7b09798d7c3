# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's rollout as one transaction: check, install, reload, prove, or roll back. No Ansible imports.

What the controller used to do in several tasks (an SSH round and a Python start each, with the
host half-done between them) happens here in one process on the host:

1. every problem of the host is found before anything changes (all at once);
2. what differs is written: the services' generations (one rename each), the CRLs, nginx's file
   (checked by nginx -t as a candidate first), the app's links and environment file, the other
   servers' files (HAProxy, PostgreSQL: each checked by its own command once written);
3. nginx and the other servers reload, and the app reloads or restarts, only when something they
   read changed, or when an endpoint serves another serial than the one installed (a host a
   killed run left between generations is converged, not failed);
4. every endpoint must answer over mTLS with the host's own identity and serve the serial
   installed; an app without endpoints is judged by its unit staying up;
5. any failure puts the previous generation, nginx file and environment file back, reloads or
   restarts again and confirms the old serial: "rolled back", or "rolled back, NOT SERVING".

The side effects (commands, probes, the unit's state, time) come from a ``Host``, so the
decisions can be tested without one. The outcome is kept on the host for the next run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from . import app_files, deploy, nginx_candidate, pki, unit_health
from .files import FileBatch, FileError, read_file

STATE_FILE = "last-transaction.json"
CONFIG_MODE = 0o644
# nginx finishes a reload in the background and a restarted app takes a moment to listen.
PROBE_SECONDS = 10.0


@dataclass(frozen=True)
class Endpoint:
    kind: str  # nginx | app | haproxy | postgresql
    service: str  # the identity it serves
    port: int
    server_name: str
    path: str = "/"
    status: int | None = None
    identity: str = ""  # which of the host's identities probes it
    label: str = ""
    user: str = ""  # postgresql: the role and database the identity logs in to
    database: str = ""


@dataclass(frozen=True)
class NginxPart:
    path: str
    content: bytes


@dataclass(frozen=True)
class AppPart:
    directory: str
    uid: int
    gid: int
    links: dict
    env_path: str
    env_content: bytes
    unit: str = ""
    unit_action: str = "restart"  # reload | restart
    settle_seconds: float = 5.0


@dataclass(frozen=True)
class ConfigFile:
    path: str
    content: bytes
    mode: int = CONFIG_MODE
    gid: int = 0


@dataclass(frozen=True)
class ServerPart:
    """A server beside nginx (HAProxy, PostgreSQL): its files, the command that checks them once
    written (before anything reads them), and the unit that reloads to read them."""

    kind: str  # haproxy | postgresql: its endpoints' kind
    unit: str
    files: tuple  # ConfigFile
    check: tuple = ()  # argv; a non-zero exit puts the files back
    restart_files: tuple = ()  # paths of settings it reads only at start (PostgreSQL's listen_addresses)


@dataclass
class Desired:
    certs_dir: str
    services: list  # deploy.ServiceFiles; certificates empty: keep what is installed
    bundle: bytes | None = None
    crl: bytes | None = None
    crl_path: str | None = None
    nginx: NginxPart | None = None
    app: AppPart | None = None
    servers: tuple = ()  # ServerPart
    endpoints: list = field(default_factory=list)


class Host:
    """The host's side effects; tests pass their own."""

    def run(self, argv) -> tuple:
        raise NotImplementedError

    def probe(self, endpoint: Endpoint, bundle: str, cert: str, key: str) -> dict:
        raise NotImplementedError

    def unit_state(self, name: str) -> unit_health.UnitState:
        raise NotImplementedError

    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


# ---------------------------------------------------------------------------------------------
# What to do: pure decisions


def reloads(nginx: bool, app_unit: bool, services_changed: bool, crl_changed: bool, nginx_changed: bool, app_changed: bool,
            stale_kinds=(), servers_changed=None) -> dict:
    """Which daemons must read their files again: nginx and each other server (servers_changed:
    {kind: its files changed}) when its files, a certificate or the CRLs changed; the app (if it
    has a unit) when a certificate, the CRLs or its own files changed; any of them when one of its
    endpoints serves another serial than the one installed."""
    wanted = {
        "nginx": nginx and (nginx_changed or services_changed or crl_changed or "nginx" in stale_kinds),
        "app": app_unit and (services_changed or crl_changed or app_changed or "app" in stale_kinds),
    }
    for kind, changed in (servers_changed or {}).items():
        wanted[kind] = changed or services_changed or crl_changed or kind in stale_kinds
    return wanted


def probe_problem(endpoint: Endpoint, result: dict, expected_serial: str | None) -> str | None:
    """Why this probe result does not prove the endpoint serves expected_serial to the host's own
    identity, or None."""
    scheme_and_path = ("postgresql://", f"/{endpoint.database}") if endpoint.kind == "postgresql" else ("https://", endpoint.path)
    where = f"{endpoint.label or endpoint.kind}: {scheme_and_path[0]}{endpoint.server_name}:{endpoint.port}{scheme_and_path[1]} (via 127.0.0.1)"
    if result.get("serial") is None:
        return f"{where}: no TLS answer ({result.get('error')})"
    if expected_serial and result["serial"] != expected_serial.upper():
        return f"{where}: serves serial {result['serial']}, expected {expected_serial}"
    if result.get("status") in (495, 496) or result.get("status") is None:
        return f"{where}: the host's own identity {endpoint.identity} was refused ({result.get('status') or result.get('error')})"
    if endpoint.status is not None and result["status"] != endpoint.status:
        return f"{where}: expected HTTP {endpoint.status}, got {result['status']}"
    return None


def wrote(record: dict) -> bool:
    """Whether the transaction wrote anything a daemon reads (a generation switched, the CRLs,
    nginx's file, the app's files, another server's files)."""
    return bool(record["switched"]) or record["crl_changed"] or record["nginx_changed"] or record["app_changed"] or \
        any(record["servers_changed"].values())


def changed_anything(record: dict) -> bool:
    """wrote(), or a service's file modes or owners put right."""
    return wrote(record) or any(s["changed"] for s in record["services"])


def outcome(changed: bool, reloaded: dict, stale: list, renewed: list) -> str:
    if stale:
        if any(found["served"] is None for found in stale):
            return "converged (an endpoint did not answer)"
        return "converged (was serving another generation)"
    if renewed:
        return "rotated"
    if changed or any(reloaded.values()):
        return "changed"
    return "unchanged"


# ---------------------------------------------------------------------------------------------
# Doing it


class Transaction:
    def __init__(self, desired: Desired, host: Host, now=None):
        self.desired = desired
        self.host = host
        self.now = now or pki.utcnow()
        self.record = {"services": [], "switched": [], "crl_changed": False, "nginx_changed": False, "app_changed": False,
                       "servers_changed": {part.kind: False for part in desired.servers},
                       "reloaded": {"nginx": False, "app": False, **{part.kind: False for part in desired.servers}},
                       "probes": [], "stale": [], "outcome": None, "cause": None}
        self._nginx_before = None
        self._env_before = None
        self._servers_before = []  # (ConfigFile, content before) of each server file this run wrote
        self._restart = set()  # kinds whose written files need a restart, not a reload
        self._installed = []  # deploy results of services whose generation this run switched

    # -- converge ------------------------------------------------------------------------------

    def converge(self) -> dict:
        desired = self.desired
        try:
            self._install()
        except (pki.PKIError, FileError, OSError) as exc:
            # Nothing is served from what was written yet; but a generation may have switched.
            return self._roll_back(f"install failed: {exc}")
        record = self.record
        changed = changed_anything(record)
        wanted = reloads(desired.nginx is not None, bool(desired.app and desired.app.unit), bool(self._installed),
                         record["crl_changed"], record["nginx_changed"], record["app_changed"], servers_changed=record["servers_changed"])
        if not any(wanted.values()):
            record["stale"] = self._stale_endpoints()
            if not record["stale"]:
                return self._finish(outcome(changed, record["reloaded"], [], []), changed)
            wanted = reloads(desired.nginx is not None, bool(desired.app and desired.app.unit), False, False, False, False,
                             {problem["kind"] for problem in record["stale"]}, {part.kind: False for part in desired.servers})
        try:
            self._refresh(wanted)
        except OSError as exc:
            return self._roll_back(str(exc))
        problem = self._gate(expected=self._serials(), watch_unit=wanted["app"])
        if problem and not wrote(record):
            # Nothing was written: there is nothing to put back, and the host serves what it did.
            record.update(outcome="not serving", cause=problem, failed=True, changed=any(record["reloaded"].values()),
                          services_changed=False)
            return record
        if problem:
            return self._roll_back(problem)
        renewed = [s["name"] for s in record["services"] if s.get("renewed") and s["changed"] and s.get("previous_serial")]
        if not renewed and record["switched"]:
            return self._finish("installed", True)
        return self._finish(outcome(changed, record["reloaded"], record["stale"], renewed), changed or any(record["reloaded"].values()))

    def _install(self):
        desired, record = self.desired, self.record
        with_certificates = [s for s in desired.services if s.certificate]
        if with_certificates:
            results = deploy.install(with_certificates, desired.bundle, self.now)
            record["services"] = results
            self._installed = [r for r in results if r["changed"] and r["replaced"]]
            record["switched"] = [r["name"] for r in self._installed]
        else:
            record["services"] = [_installed_service(s) for s in desired.services]
        if desired.crl is not None:
            record["crl_changed"] = deploy.install_crl(desired.crl_path, desired.crl)
        if desired.nginx is not None:
            self._write_nginx()
        if desired.app is not None:
            self._write_app()
        for part in desired.servers:
            self._write_server(part)

    def _write_nginx(self):
        nginx = self.desired.nginx
        before = read_file(nginx.path)
        batch = FileBatch()
        if not batch.add(nginx.path, nginx.content, CONFIG_MODE, 0, 0):
            return
        how = None
        if before != nginx.content:
            how, rejected = nginx_candidate.check(self.host.run, nginx.path, nginx.content)
            if rejected:
                raise pki.PKIError(f"nginx -t rejects the new {nginx.path}: {rejected}")
        self._nginx_before = (before,)
        batch.commit()
        self.record["nginx_changed"] = True
        if how is None and before != nginx.content:  # only a check in place can tell (the main file does not include it)
            rc, out, err = self.host.run(["nginx", "-t", "-q"])
            if rc != 0:
                raise pki.PKIError(f"nginx -t rejects the new {nginx.path}: {(err or out).strip()}")

    def _write_server(self, part):
        """Write what differs of the server's files, then check them with its own command: on a
        refusal they go back (by _roll_back) before anything reads them."""
        batch = FileBatch()
        before = {config.path: read_file(config.path) for config in part.files}
        written = [config for config in part.files if batch.add(config.path, config.content, config.mode, 0, config.gid)]
        if not written:
            return
        self._servers_before += [(config, before[config.path]) for config in written]
        batch.commit()
        self.record["servers_changed"][part.kind] = True
        if any(config.path in part.restart_files for config in written):
            self._restart.add(part.kind)
        if part.check:
            rc, out, err = self.host.run(list(part.check))
            if rc != 0:
                raise pki.PKIError(f"{part.kind}: {' '.join(part.check)} rejects the new configuration: {(err or out).strip()[-2000:]}")

    def _write_app(self):
        app = self.desired.app
        self._env_before = (read_file(app.env_path),)
        changes = app_files.apply(app.directory, app.uid, app.gid, app.links, app.env_path, app.env_content)
        self.record["app_changed"] = bool(changes)

    def _serials(self) -> dict:
        return {s["name"]: s["serial"] for s in self.record["services"]}

    def _stale_endpoints(self) -> list:
        """Endpoints that do not prove what is installed before anything is reloaded (one probe
        each, no wait): another serial served (a run killed between install and reload), or no
        answer (nginx or the app stopped)."""
        serials = self._serials()
        stale = []
        for endpoint in self.desired.endpoints:
            result = self._probe(endpoint)
            problem = probe_problem(endpoint, result, serials.get(endpoint.service))
            if problem:
                stale.append({"kind": endpoint.kind, "endpoint": endpoint.label, "served": result.get("serial"),
                              "installed": serials.get(endpoint.service), "problem": problem})
        return stale

    def _refresh(self, wanted):
        if wanted["nginx"]:
            self._systemctl("reload-or-restart", "nginx")
            self.record["reloaded"]["nginx"] = True
        for part in self.desired.servers:
            if wanted.get(part.kind):
                self._systemctl("restart" if part.kind in self._restart else "reload", part.unit)
                self.record["reloaded"][part.kind] = True
        if wanted["app"]:
            app = self.desired.app
            self._systemctl("reload-or-restart" if app.unit_action == "reload" else "restart", app.unit)
            self.record["reloaded"]["app"] = True

    def _systemctl(self, action, unit):
        rc, out, err = self.host.run(["systemctl", action, "--", unit])
        if rc != 0:
            raise OSError(f"systemctl {action} {unit} failed: {(err or out).strip()}; see journalctl -u {unit}")

    def _probe(self, endpoint):
        own = os.path.join(self.desired.certs_dir, endpoint.identity or endpoint.service)
        result = self.host.probe(endpoint, os.path.join(own, deploy.BUNDLE_FILE), os.path.join(own, deploy.CERT_FILE),
                                 os.path.join(own, deploy.KEY_FILE))
        return result

    def _gate(self, expected: dict, watch_unit: bool) -> str | None:
        """Every endpoint proves expected (retried until PROBE_SECONDS), then an app without
        endpoints keeps its unit up; the first problem, or None."""
        probes = []
        for endpoint in self.desired.endpoints:
            deadline = self.host.clock() + PROBE_SECONDS
            while True:
                result = self._probe(endpoint)
                problem = probe_problem(endpoint, result, expected.get(endpoint.service))
                if problem is None or self.host.clock() >= deadline:
                    break
                self.host.sleep(0.25)
            probes.append({"endpoint": endpoint.label, "kind": endpoint.kind, "service": endpoint.service, "port": endpoint.port,
                           "serial": result.get("serial"), "not_after": result.get("not_after"), "status": result.get("status"),
                           "tls_version": result.get("tls_version"), "problem": problem})
            if problem:
                self.record["probes"] = probes
                return problem
        self.record["probes"] = probes
        app = self.desired.app
        if watch_unit and app and app.unit and not any(e.kind == "app" for e in self.desired.endpoints):
            _state, found = unit_health.watch(lambda: self.host.unit_state(app.unit), app.settle_seconds, self.host.clock, self.host.sleep)
            if found:
                return f"unit {app.unit} did not stay up for {app.settle_seconds:g} s after its reload or restart: {found}; " \
                       f"see journalctl -u {app.unit}"
        return None

    def plan(self) -> dict:
        """Check mode: what a converge would write and reload; nothing is changed or probed."""
        desired, record = self.desired, self.record
        with_certificates = [s for s in desired.services if s.certificate]
        record["services"] = deploy.install(with_certificates, desired.bundle, self.now, check_mode=True) if with_certificates else []
        record["switched"] = [r["name"] for r in record["services"] if r["changed"] and r["replaced"]]
        if desired.crl is not None:
            record["crl_changed"] = deploy.install_crl(desired.crl_path, desired.crl, check_mode=True)
        if desired.nginx is not None:
            record["nginx_changed"] = read_file(desired.nginx.path) != desired.nginx.content
        if desired.app is not None:
            app = desired.app
            record["app_changed"] = bool(app_files.apply(app.directory, app.uid, app.gid, app.links, app.env_path, app.env_content,
                                                         check_mode=True))
        for part in desired.servers:
            record["servers_changed"][part.kind] = any(read_file(config.path) != config.content for config in part.files)
        record["reloaded"] = reloads(desired.nginx is not None, bool(desired.app and desired.app.unit), bool(record["switched"]),
                                     record["crl_changed"], record["nginx_changed"], record["app_changed"], servers_changed=record["servers_changed"])
        changed = changed_anything(record)
        return self._finish("would change" if changed else "unchanged", changed)

    # -- roll back -----------------------------------------------------------------------------

    def roll_back(self, cause: str) -> dict:
        """Serve the given services' previous generations again (a check after the transaction
        failed: the user's own health check)."""
        self.record["services"] = [_installed_service(s) for s in self.desired.services]
        self._installed = list(self.record["services"])
        return self._roll_back(cause)

    def _roll_back(self, cause: str) -> dict:
        record = self.record
        record["cause"] = cause
        restored = []
        errors = []
        switched = {r["name"] for r in self._installed if r.get("previous_serial")}
        to_restore = [s for s in self.desired.services if s.name in switched]
        if to_restore:
            try:
                restored = deploy.restore_previous(to_restore, self.now)
            except (pki.PKIError, FileError, OSError) as exc:
                errors.append(f"putting the previous generation back failed: {exc}")
        nginx_back = self._nginx_before is not None
        if nginx_back:
            try:
                self._put_back(self.desired.nginx.path, self._nginx_before[0], CONFIG_MODE, 0, 0)
            except (FileError, OSError) as exc:
                errors.append(f"putting the previous nginx configuration back failed: {exc}")
        app = self.desired.app
        if app is not None and self._env_before is not None and record["app_changed"]:
            try:
                self._put_back(app.env_path, self._env_before[0], 0o640, 0, app.gid)
            except (FileError, OSError) as exc:
                errors.append(f"putting the previous environment file back failed: {exc}")
        env_back = app is not None and self._env_before is not None and record["app_changed"]
        for config, before in reversed(self._servers_before):
            try:
                self._put_back(config.path, before, config.mode, 0, config.gid)
            except (FileError, OSError) as exc:
                errors.append(f"putting the previous server file back failed ({config.path}): {exc}")
        # Whatever read the new files, or was reloaded with them, reads the old ones again.
        wanted = {
            "nginx": self.desired.nginx is not None and (bool(restored) or nginx_back or record["reloaded"]["nginx"]),
            "app": bool(app and app.unit) and (bool(restored) or env_back or record["reloaded"]["app"]),
        }
        for part in self.desired.servers:
            wanted[part.kind] = bool(restored) or record["reloaded"][part.kind]
        serials = self._serials()
        for result in restored:
            serials[result["name"]] = result["serial"]
        record["restored"] = [{"name": r["name"], "serial": r["serial"]} for r in restored]
        record["services_after_rollback"] = serials
        if not errors:
            try:
                self._refresh(wanted)
            except OSError as exc:
                errors.append(str(exc))
        if not errors:
            problem = self._gate(expected=serials, watch_unit=wanted["app"])
            if problem:
                errors.append(f"the previous generation is not served either: {problem}")
        if errors:
            record["outcome"] = "rolled back, NOT SERVING"
            record["cause"] = f"{cause}; {'; '.join(errors)}"
        else:
            record["outcome"] = "rolled back"
        record["services_changed"] = bool(restored)
        record["changed"] = True
        record["failed"] = True
        return record

    def _put_back(self, path, before, mode, uid, gid):
        if before is None:
            if os.path.lexists(path):
                os.unlink(path)
            return
        batch = FileBatch(keep_previous=False)
        if batch.add(path, before, mode, uid, gid):
            batch.commit()

    def _finish(self, result: str, changed: bool) -> dict:
        self.record["services_changed"] = any(s["changed"] for s in self.record["services"])
        self.record["outcome"] = result
        self.record["changed"] = changed
        self.record["failed"] = False
        return self.record


def _installed_service(service) -> dict:
    """What a service serves now, read from its files (no certificate sent)."""
    cert = read_file(os.path.join(service.directory, deploy.CERT_FILE))
    if cert is None:
        raise pki.PKIError(f"service {service.name!r}: nothing is installed in {service.directory}; run mtls.fleet.site first")
    leaf = pki.load_certificates(cert, service.directory)[0]
    return {"name": service.name, "changed": False, "renewed": False, "replaced": [], "directory": service.directory,
            "serial": pki.serial_text(leaf), "previous_serial": pki.serial_text(leaf), "not_after": f"{pki.not_after(leaf):%Y-%m-%dT%H:%M:%SZ}",
            **deploy.paths(service)}


def save_outcome(state_dir: str, record: dict, clock=time.time) -> None:
    """Keep the last outcome on the host (root, 0600 directory 0700): the next plan reads it."""
    os.makedirs(state_dir, 0o700, exist_ok=True)
    kept = {key: record.get(key) for key in ("outcome", "cause", "stale", "reloaded", "restored")}
    kept["services"] = [{"name": s["name"], "serial": s["serial"]} for s in record.get("services", [])]
    kept["finished"] = int(clock())
    batch = FileBatch(keep_previous=False)
    batch.add(os.path.join(state_dir, STATE_FILE), (json.dumps(kept, sort_keys=True) + "\n").encode(), 0o600, 0, 0)
    batch.commit()
