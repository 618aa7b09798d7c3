"""A host's transaction: what it writes, when it reloads, what it proves, and how it rolls back.

The host's daemons are simulated by a FakeHost that serves, per service, the serial of the
certificate file it read at its last reload, the way nginx and a restarted app do. Files,
generations and certificates are real.
"""

import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, deploy, pki, revocation, transaction, unit_health
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys


class FakeHost(transaction.Host):
    def __init__(self, certs_dir, nginx_ok=True):
        self.certs_dir = certs_dir
        self.served = {}  # service -> serial nginx serves
        self.commands = []
        self.nginx_ok = nginx_ok
        self.broken_serials = set()  # a certificate the daemon cannot load: it serves nothing
        self.time = 0.0

    def run(self, argv):
        self.commands.append(argv)
        if argv[:2] == ["nginx", "-V"]:
            return 0, "", f"configure arguments: --conf-path={os.path.dirname(self.certs_dir)}/nginx.conf"
        if argv[0] == "nginx":
            return (0, "", "") if self.nginx_ok else (1, "", "nginx: [emerg] unknown directive")
        if argv[0] == "systemctl":
            self.served = {}
            for service in os.listdir(self.certs_dir):
                cert = os.path.join(self.certs_dir, service, "cert.pem")
                if not service.startswith(".") and os.path.exists(cert):
                    self.served[service] = pki.serial_text(pki.load_certificates(open(cert, "rb").read(), cert)[0])
            return 0, "", ""
        raise AssertionError(argv)

    def probe(self, endpoint, bundle, cert, key):
        serial = self.served.get(endpoint.service)
        if serial is None or serial in self.broken_serials:
            return {"serial": None, "error": "ConnectionRefusedError: [Errno 111] Connection refused", "status": None}
        return {"serial": serial, "status": 200, "error": None, "not_after": None, "tls_version": "TLSv1.3"}

    def unit_state(self, name):
        return unit_health.UnitState("active", "running", 0, 42, "success")

    def clock(self):
        return self.time

    def sleep(self, seconds):
        self.time += seconds


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(), CAKeys(), pki.utcnow())
    return path


def issue(ca, name, force=False):
    reqs = authority.parse_requests([{"name": name, "subject_alt_name": [f"DNS:{name}.example.com"]}], {})
    authority.issue(os.path.join(ca, "issued"), reqs, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow(), force=force)
    directory = os.path.join(ca, "issued", name)
    return tuple(open(os.path.join(directory, f), "rb").read() for f in ("cert.pem", "key.pem"))


def desired(ca, certs, cert_key, nginx_path=None, content=b"server {}\n"):
    cert, key = cert_key
    return transaction.Desired(
        certs_dir=str(certs), services=[deploy.ServiceFiles("web", str(certs / "web"), cert, key)],
        bundle=open(os.path.join(ca, "ca-bundle.pem"), "rb").read(),
        nginx=transaction.NginxPart(str(nginx_path), content) if nginx_path else None,
        endpoints=[transaction.Endpoint("nginx", "web", 8443, "web-1", identity="web", label="nginx web:8443")])


def serial_of(pem):
    return pki.serial_text(pki.load_certificates(pem, "cert")[0])


@pytest.fixture(name="certs")
def fixture_certs(tmp_path):
    path = tmp_path / "etc-mtls"
    path.mkdir(mode=0o755)
    return path


def test_first_run_installs_reloads_and_proves_then_a_rerun_changes_nothing(ca, certs, tmp_path):
    first_pair = issue(ca, "web")
    host = FakeHost(str(certs))
    record = transaction.Transaction(desired(ca, certs, first_pair, tmp_path / "mtls.conf"), host).converge()
    assert record["outcome"] == "installed", record["cause"]
    assert not record["failed"] and record["switched"] == ["web"]
    assert record["reloaded"] == {"nginx": True, "app": False} and record["nginx_changed"]
    assert record["probes"][0]["serial"] == serial_of(first_pair[0]) and record["probes"][0]["problem"] is None
    host.commands.clear()
    again = transaction.Transaction(desired(ca, certs, first_pair, tmp_path / "mtls.conf"), host).converge()
    assert again["outcome"] == "unchanged" and not again["changed"]
    assert not any(argv[0] == "systemctl" for argv in host.commands)


def test_a_host_left_between_generations_is_reloaded_not_failed(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    transaction.Transaction(desired(ca, certs, issue(ca, "web"), tmp_path / "mtls.conf"), host).converge()
    new_pair = issue(ca, "web", force=True)
    # A run killed between its install and its reload: new files, the old certificate served.
    deploy.install([deploy.ServiceFiles("web", str(certs / "web"), *new_pair)], desired(ca, certs, new_pair).bundle, pki.utcnow())
    record = transaction.Transaction(desired(ca, certs, new_pair, tmp_path / "mtls.conf"), host).converge()
    assert record["stale"] and record["stale"][0]["installed"] == serial_of(new_pair[0])
    assert record["reloaded"]["nginx"] and not record["failed"]
    assert host.served["web"] == serial_of(new_pair[0])


def test_a_failed_proof_puts_the_previous_generation_back_and_proves_it(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    old_pair = issue(ca, "web")
    transaction.Transaction(desired(ca, certs, old_pair, tmp_path / "mtls.conf"), host).converge()
    new_pair = issue(ca, "web", force=True)
    host.broken_serials.add(serial_of(new_pair[0]))
    record = transaction.Transaction(desired(ca, certs, new_pair, tmp_path / "mtls.conf"), host).converge()
    assert record["outcome"] == "rolled back" and record["failed"]
    assert "nginx web:8443: https://web-1:8443/ (via 127.0.0.1): no TLS answer (ConnectionRefusedError" in record["cause"]
    assert record["restored"] == [{"name": "web", "serial": serial_of(old_pair[0])}]
    assert host.served["web"] == serial_of(old_pair[0])
    assert (certs / "web" / "cert.pem").read_bytes() == old_pair[0]


def test_a_rollback_that_is_not_served_either_says_so(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    old_pair = issue(ca, "web")
    transaction.Transaction(desired(ca, certs, old_pair, tmp_path / "mtls.conf"), host).converge()
    new_pair = issue(ca, "web", force=True)
    host.broken_serials |= {serial_of(new_pair[0]), serial_of(old_pair[0])}
    record = transaction.Transaction(desired(ca, certs, new_pair, tmp_path / "mtls.conf"), host).converge()
    assert record["outcome"] == "rolled back, NOT SERVING"
    assert "the previous generation is not served either" in record["cause"]


def test_an_nginx_file_nginx_rejects_leaves_the_previous_generation_and_file(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    old_pair = issue(ca, "web")
    conf = tmp_path / "mtls.conf"
    transaction.Transaction(desired(ca, certs, old_pair, conf), host).converge()
    host.nginx_ok = False
    new_pair = issue(ca, "web", force=True)
    record = transaction.Transaction(desired(ca, certs, new_pair, conf, content=b"server { bad; }\n"), host).converge()
    assert record["outcome"] == "rolled back" and "nginx -t rejects the new" in record["cause"]
    assert conf.read_bytes() == b"server {}\n"
    assert (certs / "web" / "cert.pem").read_bytes() == old_pair[0]
    assert host.served["web"] == serial_of(old_pair[0])


def test_state_previous_puts_back_what_a_transaction_switched(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    old_pair = issue(ca, "web")
    transaction.Transaction(desired(ca, certs, old_pair, tmp_path / "mtls.conf"), host).converge()
    new_pair = issue(ca, "web", force=True)
    transaction.Transaction(desired(ca, certs, new_pair, tmp_path / "mtls.conf"), host).converge()
    back = desired(ca, certs, new_pair, tmp_path / "mtls.conf")
    back.services = [deploy.ServiceFiles("web", str(certs / "web"), b"")]
    record = transaction.Transaction(back, host).roll_back("the app on web-1 refuses the new certificate")
    assert record["outcome"] == "rolled back" and record["cause"] == "the app on web-1 refuses the new certificate"
    assert host.served["web"] == serial_of(old_pair[0])


def test_check_mode_says_what_would_change_and_touches_nothing(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    record = transaction.Transaction(desired(ca, certs, issue(ca, "web"), tmp_path / "mtls.conf"), host).plan()
    assert record["outcome"] == "would change" and record["reloaded"]["nginx"]
    assert not os.path.exists(certs / "web") and not os.path.exists(tmp_path / "mtls.conf") and host.commands == []


@pytest.mark.parametrize("changes, expected", [
    ({}, {"nginx": False, "app": False}),
    ({"services_changed": True}, {"nginx": True, "app": True}),
    ({"crl_changed": True}, {"nginx": True, "app": True}),
    ({"nginx_changed": True}, {"nginx": True, "app": False}),
    ({"app_changed": True}, {"nginx": False, "app": True}),
    ({"stale_kinds": {"app"}}, {"nginx": False, "app": True}),
])
def test_each_daemon_reloads_only_when_something_it_reads_changed(changes, expected):
    arguments = dict(services_changed=False, crl_changed=False, nginx_changed=False, app_changed=False)
    arguments.update(changes)
    assert transaction.reloads(True, True, **arguments) == expected


def test_the_outcome_is_kept_on_the_host_without_key_material(tmp_path, ca, certs):
    host = FakeHost(str(certs))
    record = transaction.Transaction(desired(ca, certs, issue(ca, "web"), tmp_path / "mtls.conf"), host).converge()
    transaction.save_outcome(str(tmp_path / "state"), record, clock=lambda: 1000)
    kept = (tmp_path / "state" / transaction.STATE_FILE).read_text()
    assert '"outcome": "installed"' in kept and "PRIVATE KEY" not in kept
    assert os.stat(tmp_path / "state" / transaction.STATE_FILE).st_mode & 0o777 == 0o600


def test_a_stopped_nginx_is_started_and_proved(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    pair = issue(ca, "web")
    transaction.Transaction(desired(ca, certs, pair, tmp_path / "mtls.conf"), host).converge()
    host.served = {}  # nginx stopped
    record = transaction.Transaction(desired(ca, certs, pair, tmp_path / "mtls.conf"), host).converge()
    assert record["outcome"] == "converged (an endpoint did not answer)" and record["reloaded"]["nginx"] and not record["failed"]
    assert host.served["web"] == serial_of(pair[0])


def test_an_endpoint_that_cannot_be_fixed_by_a_reload_fails_without_touching_anything(ca, certs, tmp_path):
    host = FakeHost(str(certs))
    pair = issue(ca, "web")
    transaction.Transaction(desired(ca, certs, pair, tmp_path / "mtls.conf"), host).converge()
    host.broken_serials.add(serial_of(pair[0]))
    record = transaction.Transaction(desired(ca, certs, pair, tmp_path / "mtls.conf"), host).converge()
    assert record["outcome"] == "not serving" and record["failed"] and "no TLS answer" in record["cause"]
    assert "restored" not in record and (certs / "web" / "cert.pem").read_bytes() == pair[0]


class ServerHost(FakeHost):
    """A server beside nginx (HAProxy, PostgreSQL): its check reads the file it checks, as
    `haproxy -c -f FILE` does, and refuses one holding `refuse`."""

    def __init__(self, certs_dir, refuse=b"unknown-keyword"):
        super().__init__(certs_dir)
        self.refuse = refuse

    def run(self, argv):
        if argv[0] == "check":
            self.commands.append(argv)
            with open(argv[1], "rb") as handle:
                refused = self.refuse in handle.read()
            return (1, "", "[ALERT] config : parsing [haproxy.cfg:3] : unknown keyword") if refused else (0, "", "")
        return super().run(argv)


def with_server(ca, certs, cert_key, config, content, listen=None, listen_content=b"port = 5432\n"):
    files = [transaction.ConfigFile(str(config), content)]
    if listen is not None:
        files.append(transaction.ConfigFile(str(listen), listen_content))
    wanted = desired(ca, certs, cert_key)
    wanted.servers = (transaction.ServerPart(kind="haproxy", unit="haproxy.service", files=tuple(files), check=("check", str(config)),
                                             restart_files=(str(listen),) if listen is not None else ()),)
    wanted.endpoints = [transaction.Endpoint("haproxy", "web", 8443, "web-1", identity="web", label="haproxy web:8443")]
    return wanted


def test_a_server_beside_nginx_is_written_checked_reloaded_and_proved_then_a_rerun_changes_nothing(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    pair = issue(ca, "web")
    record = transaction.Transaction(with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend web\n"), host).converge()
    assert record["outcome"] == "installed", record["cause"]
    assert record["servers_changed"] == {"haproxy": True}
    assert record["reloaded"] == {"nginx": False, "app": False, "haproxy": True}
    assert ["check", str(tmp_path / "haproxy.cfg")] in host.commands and ["systemctl", "reload", "--", "haproxy.service"] in host.commands
    assert record["probes"][0]["serial"] == serial_of(pair[0])
    assert oct(os.stat(tmp_path / "haproxy.cfg").st_mode & 0o777) == "0o644"
    host.commands.clear()
    again = transaction.Transaction(with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend web\n"), host).converge()
    assert again["outcome"] == "unchanged" and not again["changed"] and host.commands == []


def test_a_new_crl_reloads_the_server(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    pair = issue(ca, "web")
    transaction.Transaction(with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend web\n"), host).converge()
    revocation.ensure_crls(ca, CAKeys(), pki.parse_duration("30d", "lifetime"), pki.RenewBefore.parse("10d"), pki.utcnow())
    wanted = with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend web\n")
    wanted.crl, wanted.crl_path = open(os.path.join(ca, revocation.CRL_FILE), "rb").read(), str(certs / "crl.pem")
    host.commands.clear()
    record = transaction.Transaction(wanted, host).converge()
    assert record["crl_changed"] and record["reloaded"]["haproxy"] and ["systemctl", "reload", "--", "haproxy.service"] in host.commands


def test_a_file_the_server_refuses_goes_back_before_anything_reads_it(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    pair = issue(ca, "web")
    config = tmp_path / "haproxy.cfg"
    transaction.Transaction(with_server(ca, certs, pair, config, b"frontend web\n"), host).converge()
    host.commands.clear()
    record = transaction.Transaction(with_server(ca, certs, pair, config, b"frontend web\n  unknown-keyword\n"), host).converge()
    assert record["failed"] and record["outcome"] == "rolled back"
    assert "haproxy: check " in record["cause"] and "rejects the new configuration: [ALERT] config : parsing [haproxy.cfg:3]" in record["cause"]
    assert config.read_bytes() == b"frontend web\n"
    assert not any(argv[0] == "systemctl" for argv in host.commands), "nothing read the refused file, so nothing reloads"


def test_a_refused_certificate_puts_the_generation_and_the_files_back_and_reloads_the_server(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    old_pair = issue(ca, "web")
    config = tmp_path / "haproxy.cfg"
    transaction.Transaction(with_server(ca, certs, old_pair, config, b"frontend web\n"), host).converge()
    new_pair = issue(ca, "web", force=True)
    host.broken_serials.add(serial_of(new_pair[0]))  # the server cannot load the new certificate
    record = transaction.Transaction(with_server(ca, certs, new_pair, config, b"frontend web\n  bind :8444\n"), host).converge()
    assert record["outcome"] == "rolled back", record["cause"]
    assert config.read_bytes() == b"frontend web\n"
    assert host.served["web"] == serial_of(old_pair[0])
    assert [argv for argv in host.commands if argv[0] == "systemctl"][-1] == ["systemctl", "reload", "--", "haproxy.service"]


def test_a_change_of_what_the_server_reads_only_at_start_restarts_it(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    pair = issue(ca, "web")
    config, listen = tmp_path / "mtls.conf", tmp_path / "listen.conf"
    transaction.Transaction(with_server(ca, certs, pair, config, b"ssl = on\n", listen), host).converge()
    assert ["systemctl", "restart", "--", "haproxy.service"] in host.commands
    host.commands.clear()
    transaction.Transaction(with_server(ca, certs, pair, config, b"ssl = on\nssl_min_protocol_version = 'TLSv1.3'\n", listen), host).converge()
    assert [argv for argv in host.commands if argv[0] == "systemctl"] == [["systemctl", "reload", "--", "haproxy.service"]]
    host.commands.clear()
    transaction.Transaction(with_server(ca, certs, pair, config, b"ssl = on\nssl_min_protocol_version = 'TLSv1.3'\n", listen, b"port = 5433\n"),
                            host).converge()
    assert [argv for argv in host.commands if argv[0] == "systemctl"] == [["systemctl", "restart", "--", "haproxy.service"]]


def test_check_mode_says_which_server_would_reload(ca, certs, tmp_path):
    host = ServerHost(str(certs))
    pair = issue(ca, "web")
    transaction.Transaction(with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend web\n"), host).converge()
    record = transaction.Transaction(with_server(ca, certs, pair, tmp_path / "haproxy.cfg", b"frontend api\n"), host).plan()
    assert record["outcome"] == "would change" and record["servers_changed"] == {"haproxy": True} and record["reloaded"]["haproxy"]
    assert (tmp_path / "haproxy.cfg").read_bytes() == b"frontend web\n"


def test_a_postgresql_endpoint_is_named_by_its_database():
    endpoint = transaction.Endpoint("postgresql", "db", 5432, "db-1", identity="db", label="postgresql db:5432", user="mtls_fleet_probe",
                                    database="postgres")
    problem = transaction.probe_problem(endpoint, {"serial": "AB", "status": "ready"}, "CD")
    assert problem == "postgresql db:5432: postgresql://db-1:5432/postgres (via 127.0.0.1): serves serial AB, expected CD"
