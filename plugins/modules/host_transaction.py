#!/usr/bin/python
# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_transaction
short_description: A host's whole mTLS rollout in one call that finishes or rolls itself back
version_added: 0.4.0
description:
  - Takes a host's whole desired state (its services' certificate generations, the CA bundle and
    CRLs, nginx's configuration file, the app's links, environment file and unit, and the mTLS
    endpoints to prove) and converges it in one process on the host, one SSH round and one Python
    start, where a rollout used to take several tasks per host.
  - Writes only what differs (each service's generation switched with one rename, as
    M(mtls.fleet.certificate_files) does; nginx's file tested with C(nginx -t) as a candidate
    before it takes its place, as M(mtls.fleet.nginx_config) does; the app's files as
    M(mtls.fleet.app_files) does).
  - Reloads nginx, and reloads or restarts the app, only when something they read changed, or
    when an endpoint serves another serial than the one installed (a host a killed run left
    between generations is converged, not failed).
  - Then proves every endpoint, nginx and app alike, with the host's own identity - it must
    answer and serve the serial installed (retried for up to 10 s) - and, for an app with a unit
    and no endpoints, that its unit stays up for O(app.settle_seconds).
  - On any failure puts back the previous generation, nginx file and environment file, reloads or
    restarts again and confirms the old serial is served; the task fails with RV(outcome)
    V(rolled back) (or V(rolled back, NOT SERVING)) and the cause.
  - The work runs in a process of its own session, so a controller that goes away (a cancelled
    job, a lost runner, C(kill -9)) does not stop it halfway; the host ends serving one whole
    generation. The outcome is kept in O(state_dir) (root, 0700), and the next transaction on the
    host waits for a running one.
  - With O(state=previous), serves the given services' previous generations again, reloads,
    and proves the old serial (the rollback after your own health check fails).
  - Needs root on the host (C(become)).
author: mtls.fleet developers (@mtls-fleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mtls.fleet.attributes
  - mtls.fleet.attributes.diff
  - mtls.fleet.attributes.cryptography
  - mtls.fleet.endpoints
attributes:
  check_mode:
    details: Says what would be written and reloaded; nothing is probed.
  diff_mode:
    details: Certificate serials and nginx's configuration; never key material.
options:
  certs_dir:
    description: The directory holding a directory per service (the host's identities the probes use).
    type: path
    default: /etc/mtls
  services:
    description:
      - The host's services, as O(mtls.fleet.certificate_files#module:services) of
        M(mtls.fleet.certificate_files). A service without O(services[].certificate) keeps what is installed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Service name.
        type: str
        required: true
      path:
        description: Directory of the service's files.
        type: path
        required: true
      certificate:
        description: PEM of the certificate file (leaf first, then intermediates).
        type: str
      private_key:
        description: PEM of the private key. Leave out when the key is already on the host (CSR mode).
        type: str
      next_key_path:
        description: CSR mode with a next key, where the host keeps it.
        type: path
      group:
        description: Group that owns the directory and files.
        type: str
        default: root
      key_mode:
        description: Mode of the key file (and of the other files that hold or open the key).
        type: str
        default: "0600"
        choices: ["0600", "0640"]
      formats:
        description:
          - More files in the generation, beside C(key.pem), C(cert.pem) and C(ca-bundle.pem).
          - V(haproxy) adds C(combined.pem) (the chain then the key, mode O(services[].key_mode)).
          - V(pkcs12) adds C(keystore.p12) (the key and chain under the password in C(keystore.pass), both mode
            O(services[].key_mode)) and C(truststore.p12) (the bundle's CAs as Java trusted certificates, 0644, no password).
        type: list
        elements: str
        default: []
        choices: [haproxy, pkcs12]
        version_added: 0.5.0
  ca_bundle:
    description: PEM of the trust bundle. Required when a service has a certificate.
    type: str
  crl:
    description: PEM of the CA's CRLs, installed at O(crl_path).
    type: str
  crl_path:
    description: Where O(crl) goes.
    type: path
  nginx:
    description: nginx's configuration file for mtls.fleet; leave out on a host without nginx.
    type: dict
    suboptions:
      path:
        description: The file (included by nginx's main configuration).
        type: path
        required: true
      content:
        description: Its content.
        type: str
        required: true
  app:
    description: The app's files and unit (see M(mtls.fleet.app_files)); leave out on a host without one.
    type: dict
    suboptions:
      path:
        description: The app's certificate directory.
        type: path
        required: true
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group (and the environment file's).
        type: str
        default: root
      links:
        description: File names in O(app.path) and the paths they link to.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: File name.
            type: str
            required: true
          target:
            description: What it links to.
            type: path
            required: true
      env_path:
        description: The environment file.
        type: path
        required: true
      env_content:
        description: Its content.
        type: str
        required: true
      unit:
        description: The app's systemd unit; empty for none.
        type: str
        default: ""
      unit_action:
        description: V(reload) or V(restart) when its files change.
        type: str
        default: restart
        choices: [reload, restart]
      settle_seconds:
        description: How long the unit of an app without endpoints must stay up after its reload or restart.
        type: float
        default: 5.0
  servers:
    description:
      - Servers beside nginx that serve the host's certificates (the P(mtls.fleet.mtls_haproxy#role) and
        P(mtls.fleet.mtls_postgresql#role) roles' parts), at most one of each kind.
      - Their files are written when they differ, then O(servers[].check) runs; a non-zero exit puts them back before anything
        reads them. The unit reloads when its files, a certificate or the CRLs changed.
    type: list
    elements: dict
    default: []
    version_added: 0.5.0
    suboptions:
      kind:
        description: Which server; its endpoints in O(endpoints) have this C(kind).
        type: str
        required: true
        choices: [haproxy, postgresql]
      unit:
        description: Its systemd unit, reloaded with C(systemctl reload).
        type: str
        required: true
      files:
        description: Its configuration files.
        type: list
        elements: dict
        required: true
        suboptions:
          path:
            description: Where the file goes.
            type: path
            required: true
          content:
            description: Its content.
            type: str
            required: true
          mode:
            description: Its mode (owner root).
            type: str
            default: "0644"
            choices: ["0644", "0640", "0600"]
          group:
            description: Its group.
            type: str
            default: root
      check:
        description: A command (argv) that checks the files once written, such as C(haproxy -c -f FILE).
        type: list
        elements: str
        default: []
      restart_files:
        description:
          - Those of O(servers[].files) that hold settings the server reads only when it starts (PostgreSQL's C(listen_addresses));
            when one of them changed, the unit restarts instead of reloading.
        type: list
        elements: path
        default: []
  state:
    description: V(present) converges; V(previous) serves the O(services)' previous generations again.
    type: str
    default: present
    choices: [present, previous]
  installed:
    description:
      - Services whose installed generation stays as it is (no certificate sent), in O(certs_dir); their serials are the
        ones the endpoints must serve. For a change of the CRLs alone (the revoke playbook).
    type: list
    elements: str
    default: []
  restore:
    description: With O(state=previous), the services to put back (the RV(switched) of the transaction before), in O(certs_dir).
    type: list
    elements: str
    default: []
  cause:
    description: With O(state=previous), why (kept with the outcome).
    type: str
    default: a check after the transaction failed
  state_dir:
    description: Where the host keeps its last outcome and the transaction lock.
    type: path
    default: /var/lib/mtls-fleet
  lock_timeout:
    description: Seconds to wait for another transaction on this host (one a killed run left running).
    type: float
    default: 300
seealso:
  - module: mtls.fleet.certificate_files
  - module: mtls.fleet.nginx_config
  - module: mtls.fleet.app_files
  - module: mtls.fleet.tls_probe
"""

EXAMPLES = r"""
- name: Converge this host
  mtls.fleet.host_transaction:
    ca_bundle: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/ca-bundle.pem') }}"
    services:
      - name: web
        path: /etc/mtls/web
        certificate: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/issued/web-1-web/cert.pem') }}"
        private_key: "{{ lookup('ansible.builtin.file', '/var/lib/mtls-fleet/ca/issued/web-1-web/key.pem') }}"
    nginx:
      path: /etc/nginx/conf.d/mtls-fleet.conf
      content: "{{ lookup('ansible.builtin.template', 'mtls-fleet.conf.j2') }}"
    endpoints:
      - {kind: nginx, service: web, port: 8443, server_name: web-1}
  become: true
"""

RETURN = r"""
outcome:
  description:
    - V(unchanged), V(changed), V(rotated), V(converged (was serving another generation)), V(would change)
      (check mode), V(rolled back) or V(rolled back, NOT SERVING).
  returned: always
  type: str
cause:
  description: Why it rolled back.
  returned: always
  type: str
services:
  description: Per service, what is installed now (as M(mtls.fleet.certificate_files) returns it, with C(serial) and C(previous_serial)).
  returned: always
  type: list
  elements: dict
switched:
  description: The services whose generation this call switched (what O(state=previous) would put back).
  returned: always
  type: list
  elements: str
crl_changed:
  description: Whether the CRL file changed.
  returned: always
  type: bool
nginx_changed:
  description: Whether nginx's file changed.
  returned: always
  type: bool
servers_changed:
  description: Per server kind of O(servers), whether its files changed.
  returned: always
  type: dict
app_changed:
  description: Whether the app's links or environment file changed.
  returned: always
  type: bool
reloaded:
  description: Whether nginx, the app and each of O(servers) were reloaded or restarted (C(nginx), C(app), C(haproxy), C(postgresql)).
  returned: always
  type: dict
stale:
  description: Endpoints found serving another serial than the one installed before this call.
  returned: always
  type: list
  elements: dict
probes:
  description: Each endpoint's proof (serial, status, problem).
  returned: always
  type: list
  elements: dict
restored:
  description: The services put back by a rollback, with the serial they serve again.
  returned: when rolled back
  type: list
  elements: dict
"""

import grp
import os
import platform
import pwd
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mtls.fleet.plugins.module_utils import deploy, detached, locking, probe, requirements, transaction, unit_health
from ansible_collections.mtls.fleet.plugins.module_utils.deploy import ServiceFiles
from ansible_collections.mtls.fleet.plugins.module_utils.files import FileError
from ansible_collections.mtls.fleet.plugins.module_utils.pki import CRYPTOGRAPHY_IMPORT_ERROR, PKIError

APP = dict(
    path=dict(type="path", required=True),
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
    links=dict(type="list", elements="dict", default=[],
               options=dict(name=dict(type="str", required=True), target=dict(type="path", required=True))),
    env_path=dict(type="path", required=True),
    env_content=dict(type="str", required=True),
    unit=dict(type="str", default=""),
    unit_action=dict(type="str", default="restart", choices=["reload", "restart"]),
    settle_seconds=dict(type="float", default=5.0),
)


SERVER = dict(
    kind=dict(type="str", required=True, choices=["haproxy", "postgresql"]),
    unit=dict(type="str", required=True),
    files=dict(type="list", elements="dict", required=True,
               options=dict(path=dict(type="path", required=True), content=dict(type="str", required=True),
                            mode=dict(type="str", default="0644", choices=["0644", "0640", "0600"]), group=dict(type="str", default="root"))),
    check=dict(type="list", elements="str", default=[]),
    restart_files=dict(type="list", elements="path", default=[]),
)


class RealHost(transaction.Host):
    def __init__(self, run_command):
        self._run_command = run_command

    def run(self, argv):
        return self._run_command(argv)

    def probe(self, endpoint, bundle, cert, key):
        login = {"user": endpoint.user, "database": endpoint.database} if endpoint.kind == "postgresql" else None
        return probe.probe("127.0.0.1", endpoint.port, endpoint.server_name, bundle, cert, key, endpoint.path, timeout=5.0, postgresql=login)

    def unit_state(self, name):
        _rc, out, _err = self.run(["systemctl", "show", f"--property={','.join(unit_health.PROPERTIES)}", "--", name])
        return unit_health.UnitState.parse(out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certs_dir=dict(type="path", default="/etc/mtls"),
            services=dict(type="list", elements="dict", default=[], options=deploy.SERVICE_OPTIONS),
            ca_bundle=dict(type="str"),
            crl=dict(type="str"),
            crl_path=dict(type="path"),
            nginx=dict(type="dict", options=dict(path=dict(type="path", required=True), content=dict(type="str", required=True))),
            app=dict(type="dict", options=APP),
            servers=dict(type="list", elements="dict", default=[], options=SERVER),
            endpoints=dict(type="list", elements="dict", default=[], options=probe.ENDPOINT_OPTIONS),
            state=dict(type="str", default="present", choices=["present", "previous"]),
            installed=dict(type="list", elements="str", default=[]),
            restore=dict(type="list", elements="str", default=[]),
            cause=dict(type="str", default="a check after the transaction failed"),
            state_dir=dict(type="path", default="/var/lib/mtls-fleet"),
            lock_timeout=dict(type="float", default=300.0),
        ),
        required_together=[("crl", "crl_path")],
        supports_check_mode=True,
    )
    missing = _requirement_problems()
    if missing:
        module.fail_json(msg=" ".join(missing), outcome="refused")
    try:
        desired = _desired(module.params)
    except (PKIError, FileError) as exc:
        module.fail_json(msg=str(exc), outcome="refused")
    work = transaction.Transaction(desired, RealHost(module.run_command))
    if module.check_mode:
        try:
            result = work.plan()
        except (PKIError, FileError) as exc:
            module.fail_json(msg=str(exc), outcome="refused")
    else:
        result = detached.run(lambda: _run(work, module.params))
    if result.get("failed"):
        message = result.pop("msg", None) or f"{result.get('outcome')}: {result.get('cause')}"
        module.fail_json(msg=message, **_output(module, result))
    module.exit_json(**_output(module, result))


def _run(work, params):
    """In the detached process: hold the host's lock, converge or roll back, keep the outcome."""
    state_dir = params["state_dir"]
    os.makedirs(state_dir, 0o700, exist_ok=True)
    try:
        with locking.ca_lock(state_dir, "mtls.fleet.host_transaction", params["lock_timeout"], what="this host's transaction",
                             fix="wait for it (a transaction of a run that was killed finishes on its own)"):
            if params["state"] == "previous":
                record = work.roll_back(params["cause"])
            else:
                record = work.converge()
            transaction.save_outcome(state_dir, record)
    except (PKIError, FileError) as exc:
        return {"failed": True, "msg": str(exc), "outcome": "refused", "cause": str(exc)}
    if record.get("failed"):
        record["msg"] = f"{record['outcome']}: {record['cause']}"
    return record


def _output(module, result):
    output = {key: value for key, value in result.items() if key not in ("failed", "exception")}
    output.setdefault("changed", False)
    if module._diff and result.get("services"):
        changed = [s for s in result["services"] if s.get("changed") and s.get("previous_serial") != s.get("serial")]
        if changed:
            output["diff"] = [dict(before_header=s.get("cert_path", s["name"]), after_header=s.get("cert_path", s["name"]),
                                   before=f"serial: {s['previous_serial']}\n" if s.get("previous_serial") else "",
                                   after=f"serial: {s['serial']}\n") for s in changed]
    return output


def _requirement_problems():
    if CRYPTOGRAPHY_IMPORT_ERROR:
        version = None
    else:
        import cryptography  # pylint: disable=import-outside-toplevel

        version = cryptography.__version__
    if version is not None and requirements.cryptography_is_recent(version):
        return []
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            ids = requirements.os_release_ids(handle.read())
    except OSError:
        ids = [platform.system().lower()]
    return requirements.problems(sys.version_info, sys.executable, version, ids)


def _desired(params):
    if params["state"] == "previous":
        services = [ServiceFiles(name=name, directory=os.path.join(params["certs_dir"], name), certificate=b"") for name in params["restore"]]
    else:
        services = [deploy.service_from_options(entry) for entry in params["services"]]
        services += [ServiceFiles(name=name, directory=os.path.join(params["certs_dir"], name), certificate=b"") for name in params["installed"]]
    if any(s.certificate for s in services) and not params["ca_bundle"]:
        raise PKIError("ca_bundle is required to install services' certificates")
    nginx = params["nginx"]
    app = params["app"]
    return transaction.Desired(
        certs_dir=params["certs_dir"],
        services=services,
        bundle=params["ca_bundle"].encode() if params["ca_bundle"] else None,
        crl=params["crl"].encode() if params["crl"] else None,
        crl_path=params["crl_path"],
        nginx=transaction.NginxPart(nginx["path"], _text(nginx["content"])) if nginx else None,
        app=_app(app) if app else None,
        servers=tuple(_server(server) for server in params["servers"]),
        endpoints=[transaction.Endpoint(kind=e["kind"], service=e["service"], port=e["port"], server_name=e["server_name"],
                                        path=e["path"], status=e["status"], identity=e["identity"] or e["service"],
                                        label=e["label"] or f"{e['kind']} {e['service']}:{e['port']}", user=e["user"], database=e["database"])
                   for e in params["endpoints"]],
    )


def _text(content):
    data = content.encode()
    return data if data.endswith(b"\n") else data + b"\n"


def _app(app):
    for link in app["links"]:
        if "/" in link["name"] or link["name"] in ("", ".", ".."):
            raise PKIError(f"app.links: {link['name']!r} is not a file name; name a file inside {app['path']}")
    return transaction.AppPart(
        directory=app["path"], uid=_id_of("app.owner", app["owner"], pwd.getpwnam, "pw_uid", "create the user, or name another"),
        gid=_id_of("app.group", app["group"], grp.getgrnam, "gr_gid", "create the group, or name another"),
        links={link["name"]: link["target"] for link in app["links"]}, env_path=app["env_path"], env_content=_text(app["env_content"]),
        unit=app["unit"], unit_action=app["unit_action"], settle_seconds=app["settle_seconds"],
    )


def _server(server):
    files = tuple(transaction.ConfigFile(path=entry["path"], content=_text(entry["content"]), mode=int(entry["mode"], 8),
                                         gid=_id_of(f"servers[{server['kind']}].files.group", entry["group"], grp.getgrnam, "gr_gid",
                                                    "create the group, or name another"))
                  for entry in server["files"])
    return transaction.ServerPart(kind=server["kind"], unit=server["unit"], files=files, check=tuple(server["check"]),
                                  restart_files=tuple(server["restart_files"]))


def _id_of(field, value, lookup, attribute, fix):
    if value.isdigit():
        return int(value)
    try:
        return getattr(lookup(value), attribute)
    except KeyError:
        raise PKIError(f"{field}: {value!r} does not exist on this host; {fix}") from None


if __name__ == "__main__":
    main()
