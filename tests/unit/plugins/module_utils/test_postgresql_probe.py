"""The PostgreSQL probe against a real PostgreSQL server (Debian's postgresql, run as user
postgres on loopback in a cluster of its own): its SSLRequest, the handshake, a login by
certificate, and the server's refusals (an identity the map does not admit, a revoked one)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki, probe, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif((not BINARIES or os.geteuid() != 0) and not os.environ.get("CI"),
                                reason="needs Debian's postgresql and root to run it as postgres (scripts/install-system.sh)")


def issue(ca, name):
    raw = [{"name": name, "profile": "service", "subject_alt_name": ["DNS:localhost", "IP:127.0.0.1"]}]
    authority.issue(os.path.join(ca, "issued"), authority.parse_requests(raw, {}), authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow())
    return os.path.join(ca, "issued", name, "cert.pem"), os.path.join(ca, "issued", name, "key.pem")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(*argv):
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, check=True, cwd="/")


class Cluster:
    """A cluster of its own, serving TLS with a certificate of the test CA and admitting `client`
    and `other` as role probe by certificate; the CRLs are the CA's."""

    def __init__(self, ca):
        self.ca = ca
        self.data = tempfile.mkdtemp(prefix="mtls-pg-")
        shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        bin_dir = BINARIES[-1]
        as_postgres(f"{bin_dir}/initdb", "-D", self.data, "-A", "peer", "--no-sync", "-U", "postgres")
        cert, key = issue(ca, "db")
        for source, name in ((cert, "server.crt"), (key, "server.key"), (os.path.join(ca, "ca-bundle.pem"), "ca.pem")):
            shutil.copy(source, os.path.join(self.data, name))
            shutil.chown(os.path.join(self.data, name), "postgres", "postgres")
            os.chmod(os.path.join(self.data, name), 0o600)
        self.publish_crls()
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.data}'\nssl = on\n"
                       "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\nssl_crl_file = 'crl.pem'\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all postgres peer\nhostssl postgres probe 127.0.0.1/32 cert map=mtls_fleet\n")
        with open(os.path.join(self.data, "pg_ident.conf"), "w", encoding="utf-8") as ident:
            ident.write("mtls_fleet client probe\nmtls_fleet other probe\n")
        as_postgres(f"{bin_dir}/pg_ctl", "-D", self.data, "-l", os.path.join(self.data, "log"), "-w", "start")
        as_postgres("psql", "-h", self.data, "-p", str(self.port), "-XqAt", "-c", "CREATE ROLE probe LOGIN")
        self.serial = pki.serial_text(pki.load_certificates(open(cert, "rb").read(), cert)[0])

    def publish_crls(self):
        revocation.ensure_crls(self.ca, CAKeys(), pki.parse_duration("30d", "lifetime"), pki.RenewBefore.parse("10d"), pki.utcnow())
        target = os.path.join(self.data, "crl.pem")
        shutil.copy(os.path.join(self.ca, revocation.CRL_FILE), target)
        shutil.chown(target, "postgres", "postgres")

    def reload(self):
        as_postgres(f"{BINARIES[-1]}/pg_ctl", "-D", self.data, "reload")
        time.sleep(0.5)

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{BINARIES[-1]}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"],
                       capture_output=True, check=False, cwd="/")
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


@pytest.fixture(name="cluster")
def fixture_cluster(ca):
    cluster = Cluster(ca)
    yield cluster
    cluster.stop()


def login(cluster, identity, user="probe"):
    return probe.probe("127.0.0.1", cluster.port, "localhost", os.path.join(cluster.ca, "ca-bundle.pem"), *identity,
                       postgresql={"user": user, "database": "postgres"})


def test_a_mapped_identity_logs_in_and_the_served_serial_is_read(cluster):
    result = login(cluster, issue(cluster.ca, "client"))
    assert result["status"] == "ready" and result["error"] is None, result
    assert result["serial"] == cluster.serial and result["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert probe.client_verdict(result) == "accepted"
    served = probe.served_certificate("127.0.0.1", cluster.port, "localhost", postgresql=True)
    assert served["serial"] == cluster.serial and served["error"] is None


def test_an_identity_the_map_does_not_admit_is_refused_by_the_server(cluster):
    result = login(cluster, issue(cluster.ca, "stranger"))
    assert result["status"] is None and result["error"].startswith("PostgreSQL FATAL 28000: certificate authentication failed"), result
    assert probe.client_verdict(result) == "refused"


def test_a_revoked_identity_is_refused_once_the_server_reloads_its_crls_and_the_refusal_is_timed(cluster):
    identity = issue(cluster.ca, "client")
    assert login(cluster, identity)["status"] == "ready"
    revocation.revoke(cluster.ca, [revocation.RevokeRequest(name="client", reason=pki.RevocationReason.KEY_COMPROMISE)], CAKeys(), pki.utcnow())
    cluster.publish_crls()
    started = time.time()
    cluster.reload()
    endpoint = {"host": "db-1", "address": "127.0.0.1", "kind": "postgresql", "service": "db", "port": cluster.port, "server_name": "localhost",
                "path": "/", "label": "postgresql db", "user": "probe", "database": "postgres"}
    [record] = probe.until_refused([endpoint], os.path.join(cluster.ca, "ca-bundle.pem"), *identity, started, wait=10)
    assert record["refused"] and record["client"] == "refused", record
    # TLS 1.3 sends the alert after the handshake: the client reads it, or the close that follows it
    assert record["error"].startswith(("SSLError", "SSLEOFError", "ConnectionResetError")), record
    assert login(cluster, identity)["status"] is None
    assert login(cluster, issue(cluster.ca, "other"))["status"] == "ready", "a client that was not revoked still logs in"
