"""The reference apps (extensions/apps: Go, Node, Python and Java servers that terminate mTLS
themselves) as real processes on loopback: they refuse what nginx refuses, rotate on SIGHUP without
a failed request, keep serving when new files do not load, enforce the CRLs, and stop cleanly. The
reference clients (Go http.Client, Node https.Agent, Python requests, Java HttpClient) present a
rotated identity without a restart. The Java pair reads the PKCS#12 stores mtls_app links.

docs/applications.md tells app owners to copy them, so they are held to what mtls.fleet promises.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, keystores, pki, probe, revocation
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "extensions", "apps")
CRL_LIFETIME, CRL_RENEW = pki.parse_duration("30d", "lifetime"), pki.RenewBefore.parse("10d")


def go_build(tmp_path_factory, source):
    """A Go reference program, built once per session (scripts/install-system.sh installs golang-go)."""
    out = str(tmp_path_factory.mktemp("go") / f"mtls-ref-{source}")
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=os.path.join(ROOT, ".build", "go-cache"))
    subprocess.run(["go", "build", "-o", out, os.path.join(APPS, source, "main.go")], check=True, env=env, capture_output=True)
    return out


@pytest.fixture(name="go_binary", scope="session")
def fixture_go_binary(tmp_path_factory):
    return go_build(tmp_path_factory, "go")


def command(kind, go_binary):
    return {"go": [go_binary], "node": [shutil.which("node") or "node", os.path.join(APPS, "node", "server.js")],
            "python": ["python3", os.path.join(APPS, "python", "server.py")],
            "java": [shutil.which("java") or "java", "-Xmx128m", os.path.join(APPS, "java", "Server.java")]}[kind]


# A JDK: scripts/install-system.sh installs one; CI must not skip it.
JAVA = pytest.param("java", marks=pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("CI"), reason="no JDK here"))


class Fleet:
    """A CA with an intermediate, the app's files as mtls_app hands them over, and clients."""

    def __init__(self, tmp_path):
        self.ca = str(tmp_path / "ca")
        self.files = tmp_path / "app"
        self.files.mkdir(parents=True)
        authority.ensure_ca(self.ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
        self.bundle = os.path.join(self.ca, "ca-bundle.pem")
        self.install("app")
        self.publish_crls()

    def issue(self, name, profile="service"):
        raw = [{"name": name, "profile": profile, "subject_alt_name": ["DNS:localhost", f"URI:spiffe://example.org/{name}"]}]
        issuer = authority.load_issuer(self.ca, CAKeys())
        outcome = authority.issue(os.path.join(self.ca, "issued"), authority.parse_requests(raw, {}), issuer, pki.Policy(), pki.utcnow())[0]
        return outcome.cert_path, os.path.join(self.ca, "issued", name, "key.pem")

    def install(self, name, directory=None, profile="service"):
        """The files switch to a new certificate (each file atomically, key first, as certificate_files does),
        the PKCS#12 stores too (formats: [pkcs12])."""
        directory = directory or self.files
        directory.mkdir(exist_ok=True)
        cert, key = self.issue(name, profile)
        for source, target in ((key, "key.pem"), (cert, "cert.pem"), (self.bundle, "ca-bundle.pem")):
            shutil.copy(source, directory / (target + ".new"))
            os.replace(directory / (target + ".new"), directory / target)
        store, password = keystores.keystore(open(key, "rb").read(), open(cert, "rb").read())
        for target, content in (("keystore.pass", password), ("keystore.p12", store),
                                ("truststore.p12", keystores.truststore(open(self.bundle, "rb").read()))):
            (directory / (target + ".new")).write_bytes(content)
            os.replace(directory / (target + ".new"), directory / target)
        return pki.serial_text(pki.load_certificates(open(cert, "rb").read(), cert)[0])

    def publish_crls(self):
        revocation.ensure_crls(self.ca, CAKeys(), CRL_LIFETIME, CRL_RENEW, pki.utcnow())
        shutil.copy(os.path.join(self.ca, revocation.CRL_FILE), self.files / "crl.pem.new")
        os.replace(self.files / "crl.pem.new", self.files / "crl.pem")

    def env(self, port):
        return dict(os.environ, MTLS_CERT_FILE=str(self.files / "cert.pem"), MTLS_KEY_FILE=str(self.files / "key.pem"),
                    MTLS_CA_FILE=str(self.files / "ca-bundle.pem"), MTLS_CRL_FILE=str(self.files / "crl.pem"),
                    MTLS_KEYSTORE_FILE=str(self.files / "keystore.p12"), MTLS_KEYSTORE_PASSWORD_FILE=str(self.files / "keystore.pass"),
                    MTLS_TRUSTSTORE_FILE=str(self.files / "truststore.p12"), PORT=str(port), LISTEN=f"127.0.0.1:{port}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="go_client", scope="session")
def fixture_go_client(tmp_path_factory):
    return go_build(tmp_path_factory, "go-client")


@pytest.fixture(name="app", params=["go", "node", "python", JAVA])
def fixture_app(request, tmp_path, go_binary):
    fleet = Fleet(tmp_path)
    port = free_port()
    process = subprocess.Popen(command(request.param, go_binary), env=fleet.env(port), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    client = fleet.issue("client", profile="client")
    deadline = time.monotonic() + 20
    while call(port, fleet.bundle, client)["status"] != 200:
        assert process.poll() is None and time.monotonic() < deadline, f"{request.param} app did not come up"
        time.sleep(0.1)
    yield request.param, fleet, port, process, client
    if process.poll() is None:
        process.kill()
    process.wait(5)


def call(port, bundle, client):
    return probe.probe("127.0.0.1", port, "localhost", bundle, *client, timeout=5)


def served_serial(port, bundle, client, wanted, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        result = call(port, bundle, client)
        if result["serial"] == wanted or time.monotonic() > deadline:
            return result["serial"]
        time.sleep(0.1)


def test_accepts_fleet_clients_and_names_them(app):
    kind, fleet, port, _process, client = app
    result = call(port, fleet.bundle, client)
    reply = json.loads(result["body"])
    assert result["status"] == 200 and reply["client_identity"] == "client" and reply["app"] == kind


def test_refuses_a_client_without_a_certificate_on_read(app):
    _kind, fleet, port, _process, _client = app
    result = probe.probe("127.0.0.1", port, "localhost", fleet.bundle)
    assert probe.client_verdict(result) == "refused", result


def test_refuses_a_client_of_a_foreign_ca(app, tmp_path):
    _kind, fleet, port, _process, _client = app
    foreign = Fleet(tmp_path / "foreign")
    result = call(port, fleet.bundle, foreign.issue("intruder", profile="client"))
    assert probe.client_verdict(result) == "refused", result


def test_sighup_rotates_the_served_certificate_without_a_failed_request(app):
    _kind, fleet, port, process, client = app
    counts, stop = {"sent": 0, "failed": []}, threading.Event()

    def load():
        while not stop.is_set():
            result = call(port, fleet.bundle, client)
            counts["sent"] += 1
            if result["status"] != 200:
                counts["failed"].append(result["error"])

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for round_ in range(3):
            new_serial = fleet.install(f"app-{round_}")
            process.send_signal(signal.SIGHUP)
            assert served_serial(port, fleet.bundle, client, new_serial) == new_serial
            time.sleep(0.3)  # requests on the new files too
    finally:
        stop.set()
        worker.join()
    assert counts["sent"] > 10 and counts["failed"] == []


def test_files_that_do_not_load_are_refused_and_the_previous_ones_kept(app):
    kind, fleet, port, process, client = app
    before = call(port, fleet.bundle, client)["serial"]
    other_key = fleet.issue("stranger")[1]
    fleet.install("app-next")
    shutil.copy(other_key, fleet.files / "key.pem")  # a key that does not match the new certificate
    if kind == "java":
        (fleet.files / "keystore.pass").write_text("not the keystore's password\n")  # a keystore that does not open
    process.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert process.poll() is None
    assert call(port, fleet.bundle, client)["serial"] == before


def test_a_revoked_client_is_refused_after_the_crl_reload_while_others_are_served(app):
    _kind, fleet, port, process, client = app
    other = fleet.issue("other", profile="client")
    revocation.revoke(fleet.ca, [revocation.RevokeRequest(name="client", reason=pki.RevocationReason.KEY_COMPROMISE)], CAKeys(), pki.utcnow())
    fleet.publish_crls()
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while probe.client_verdict(call(port, fleet.bundle, client)) != "refused":
        assert time.monotonic() < deadline, "the revoked client is still accepted"
        time.sleep(0.1)
    assert call(port, fleet.bundle, other)["status"] == 200


class KeptAlive:
    """One TLS connection that stays open between requests (HTTP/1.1 keep-alive)."""

    def __init__(self, port, bundle, client):
        context = ssl.create_default_context(cafile=bundle)
        context.load_cert_chain(*client)
        self.conn = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")

    def get(self):
        """The status of one more request on this connection; raises once the server closed it."""
        self.conn.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        head, _sep, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += self.conn.recv(4096)
        return int(head.split()[1])

    def close(self):
        self.conn.close()


def test_a_revoked_clients_open_connection_is_closed_at_the_crl_reload_and_others_stay_open(app):
    _kind, fleet, port, process, client = app
    other = fleet.issue("other", profile="client")
    held, kept = KeptAlive(port, fleet.bundle, client), KeptAlive(port, fleet.bundle, other)
    try:
        assert held.get() == 200 and kept.get() == 200
        revocation.revoke(fleet.ca, [revocation.RevokeRequest(name="client", reason=pki.RevocationReason.KEY_COMPROMISE)], CAKeys(), pki.utcnow())
        fleet.publish_crls()
        process.send_signal(signal.SIGHUP)
        deadline, served_after = time.monotonic() + 5, 0
        while True:
            try:
                status = held.get()
            except (OSError, ssl.SSLError):
                break  # closed: its next request has to make a new handshake, which the new CRLs refuse
            if status == 495:
                # Java's server does not hand out its connections: it refuses the request, then closes the connection
                with pytest.raises((OSError, ssl.SSLError)):
                    held.get()
                break
            assert status == 200
            served_after += 1
            assert time.monotonic() < deadline, f"the revoked client's connection still served {served_after} requests after 5 s"
            time.sleep(0.05)
        assert kept.get() == 200 and kept.get() == 200  # the other client's connection was left open
        assert probe.client_verdict(call(port, fleet.bundle, client)) == "refused"
    finally:
        held.close()
        kept.close()


def test_sigterm_stops_it_cleanly(app):
    _kind, _fleet, _port, process, _client = app
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


@pytest.mark.parametrize("kind", ["go", "node", "python"])
def test_reference_client_presents_its_rotated_identity_without_a_restart(kind, tmp_path, go_binary, go_client):
    fleet = Fleet(tmp_path)
    port = free_port()
    server = subprocess.Popen(command("python", go_binary), env=fleet.env(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    identity = tmp_path / "client"
    first = fleet.install("client", identity, profile="client")
    try:
        deadline = time.monotonic() + 20
        while call(port, fleet.bundle, (str(identity / "cert.pem"), str(identity / "key.pem")))["status"] != 200:
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        program = {"go": [go_client], "node": [shutil.which("node") or "node", os.path.join(APPS, "node", "client.js")],
                   "python": [sys.executable, os.path.join(APPS, "python", "client.py")]}[kind]
        env = dict(os.environ, MTLS_CERT_FILE=str(identity / "cert.pem"), MTLS_KEY_FILE=str(identity / "key.pem"),
                   MTLS_CA_FILE=str(identity / "ca-bundle.pem"))
        client = subprocess.Popen([*program, f"https://localhost:{port}/", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(1.5)
        second = fleet.install("client-next", identity, profile="client")
        out, err = client.communicate(timeout=30)
    finally:
        server.kill()
        server.wait(5)
    assert client.returncode == 0, err
    result = json.loads(out)
    assert result["sent"] > 20 and result["failed"] == 0, err
    assert [serial.lstrip("0") for serial in result["client_serials"]] == [first.lstrip("0"), second.lstrip("0")]


@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("CI"), reason="no JDK here")
def test_java_client_takes_up_its_rotated_keystore_without_a_restart(tmp_path, go_binary):
    fleet = Fleet(tmp_path)
    port = free_port()
    server = subprocess.Popen(command("python", go_binary), env=fleet.env(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    identity = tmp_path / "client"
    fleet.install("client", identity, profile="client")
    out = tmp_path / "counts.json"
    try:
        deadline = time.monotonic() + 20
        while call(port, fleet.bundle, (str(identity / "cert.pem"), str(identity / "key.pem")))["status"] != 200:
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        env = dict(os.environ, MTLS_KEYSTORE_FILE=str(identity / "keystore.p12"), MTLS_KEYSTORE_PASSWORD_FILE=str(identity / "keystore.pass"),
                   MTLS_TRUSTSTORE_FILE=str(identity / "truststore.p12"))
        client = subprocess.Popen([shutil.which("java") or "java", os.path.join(APPS, "java", "Client.java"), f"https://localhost:{port}/", str(out),
                                   "--seconds", "6", "--stop-file", str(tmp_path / "stop")], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        time.sleep(4)  # it compiles, then calls
        fleet.install("client-next", identity, profile="client")
        output = client.communicate(timeout=60)[0]
    finally:
        server.kill()
        server.wait(5)
    assert client.returncode == 0, output
    result = json.loads(out.read_text())
    assert result["sent"] > 20 and result["failed"] == 0 and result["reloads"] == 1, result
