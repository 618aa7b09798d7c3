"""Issued certificates in real use: mutual-TLS handshakes with Python's ssl, and openssl verify.

The server requires a client certificate. Under TLS 1.3 a refused client only learns it on its
first read, so every client here reads a reply before anything is asserted.
"""

import datetime
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki, probe, revocation, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


def issue(ca, name, profile="service", key_type="ecdsa-p256", sans=None):
    raw = [{"name": name, "profile": profile, "key_type": key_type,
            "subject_alt_name": sans or ["DNS:localhost", "IP:127.0.0.1", f"URI:spiffe://example.org/{name}"]}]
    issuer = authority.load_issuer(ca, CAKeys())
    outcome = authority.issue(os.path.join(ca, "issued"), authority.parse_requests(raw, {}), issuer, pki.Policy(), pki.utcnow())[0]
    return outcome.cert_path, os.path.join(ca, "issued", name, "key.pem")


class MTLSServer:
    """A one-thread TLS server that demands a client cert and answers with the client's CN."""

    def __init__(self, cert, key, bundle, crl=None):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.load_verify_locations(bundle)
        if crl:  # as nginx's ssl_crl: CRLs checked for every certificate of the chain
            self.context.load_verify_locations(crl)
            self.context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(10)
        while True:
            try:
                raw = self.sock.accept()[0]
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(16)
                    cn = dict(x[0] for x in conn.getpeercert()["subject"])["commonName"]
                    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(cn) + 6}\r\n\r\nhello {cn}".encode())
            except (ssl.SSLError, OSError):
                raw.close()

    def close(self):
        self.sock.close()


def request(port, bundle, cert=None, key=None, server_name="localhost"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(bundle)
    if cert:
        context.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\n\r\n")
            reply = conn.recv(256)
            if not reply:
                raise ConnectionResetError("server closed without a reply")
            return reply.decode().partition("\r\n\r\n")[2]


@pytest.fixture(name="server")
def fixture_server(ca):
    cert, key = issue(ca, "server", profile="server")
    srv = MTLSServer(cert, key, os.path.join(ca, "ca-bundle.pem"))
    yield srv
    srv.close()


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"])
def test_client_through_intermediate_is_accepted(ca, server, key_type):
    cert, key = issue(ca, f"client-{key_type}", profile="client", key_type=key_type)
    assert request(server.port, os.path.join(ca, "ca-bundle.pem"), cert, key) == f"hello client-{key_type}"


def test_service_profile_works_both_ways(ca, server):
    cert, key = issue(ca, "peer")
    assert request(server.port, os.path.join(ca, "ca-bundle.pem"), cert, key) == "hello peer"


def test_client_without_certificate_is_refused_on_read(ca, server):
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        request(server.port, os.path.join(ca, "ca-bundle.pem"))


def test_client_from_a_foreign_ca_is_refused_on_read(ca, server, tmp_path):
    foreign = str(tmp_path / "foreign")
    authority.ensure_ca(foreign, authority.CASpec(common_name="Foreign root"), CAKeys(), pki.utcnow())
    cert, key = issue(foreign, "intruder", profile="client")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        request(server.port, os.path.join(ca, "ca-bundle.pem"), cert, key)


def test_server_only_cert_is_refused_as_client(ca, server):
    cert, key = issue(ca, "wrong-eku", profile="server")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        request(server.port, os.path.join(ca, "ca-bundle.pem"), cert, key)


def test_client_refuses_server_for_a_name_not_in_its_sans(ca, server):
    cert, key = issue(ca, "peer")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|doesn't match"):
        request(server.port, os.path.join(ca, "ca-bundle.pem"), cert, key, server_name="other.example.com")


OPENSSL = shutil.which("openssl") or "openssl"  # installed by scripts/install-system.sh


@pytest.mark.parametrize(
    "profile, purposes_ok, purposes_refused",
    [("server", ["sslserver"], ["sslclient"]), ("client", ["sslclient"], ["sslserver"]), ("service", ["sslserver", "sslclient"], [])],
)
@pytest.mark.parametrize("intermediate", [False, True])
def test_openssl_x509_strict_agrees_with_the_profile(tmp_path, profile, purposes_ok, purposes_refused, intermediate):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=intermediate), CAKeys(), pki.utcnow())
    cert = issue(ca, "leaf", profile=profile)[0]
    chain = pki.load_certificates(open(cert, "rb").read(), cert)
    leaf_path, untrusted = tmp_path / "leaf.pem", tmp_path / "untrusted.pem"
    leaf_path.write_bytes(pki.cert_to_pem(chain[0]))
    untrusted.write_bytes(pki.chain_to_pem(chain[1:]))
    base = [OPENSSL, "verify", "-x509_strict", "-CAfile", os.path.join(ca, "ca-bundle.pem")]
    if intermediate:
        base += ["-untrusted", str(untrusted)]
    for purpose in purposes_ok:
        done = subprocess.run([*base, "-purpose", purpose, str(leaf_path)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    for purpose in purposes_refused:
        done = subprocess.run([*base, "-purpose", purpose, str(leaf_path)], capture_output=True, text=True, check=False)
        assert done.returncode != 0 and "unsuitable certificate purpose" in done.stdout + done.stderr


def test_probe_reads_the_answer_and_the_served_serial(ca, server):
    cert, key = issue(ca, "prober", profile="client")
    bundle = os.path.join(ca, "ca-bundle.pem")
    served = pki.load_certificates(open(os.path.join(ca, "issued", "server", "cert.pem"), "rb").read(), "cert")[0]
    good = probe.probe("127.0.0.1", server.port, "localhost", bundle, cert, key)
    assert good["error"] is None and good["status"] == 200 and good["body"] == "hello prober"
    assert good["serial"] == pki.serial_text(served) and good["tls_version"] == "TLSv1.3"
    refused = probe.probe("127.0.0.1", server.port, "localhost", bundle)
    assert not refused["ok"] and refused["error"] and refused["serial"] == pki.serial_text(served)


def test_a_trust_check_calls_each_endpoint_as_each_identity_whose_keys_live_in_memory(ca, server, tmp_path):
    foreign = str(tmp_path / "foreign")
    authority.ensure_ca(foreign, authority.CASpec(common_name="Old root"), CAKeys(), pki.utcnow())
    identities = {"old": issue(foreign, "probe-old", profile="client"), "new": issue(ca, "probe-new", profile="client")}
    contents = {f"{name}-{part}": open(path, "rb").read() for name, pair in identities.items() for part, path in zip(("cert", "key"), pair)}
    endpoint = {"label": "app api:%d" % server.port, "kind": "app", "service": "api", "port": server.port, "server_name": "localhost", "path": "/"}
    bundle = os.path.join(ca, "ca-bundle.pem")
    with probe.memory_files(contents) as paths:
        assert all(path.startswith("/proc/self/fd/") for path in paths.values())  # no file of them on any disk
        pairs = {name: (paths[f"{name}-cert"], paths[f"{name}-key"]) for name in identities}
        records = probe.check_trust([endpoint], pairs, {"old": "refused", "new": "accepted"}, lambda e: bundle, attempts=3, delay=0)
        assert [(r["identity"], r["client"], r["ok"], r["attempts"]) for r in records] == [("old", "refused", True, 1), ("new", "accepted", True, 1)]
        sleeps = []
        wrong, = probe.check_trust([endpoint], pairs, {"old": "accepted"}, lambda e: bundle, attempts=3, delay=0.5, sleep=sleeps.append)
    assert (wrong["ok"], wrong["client"], wrong["attempts"], sleeps) == (False, "refused", 3, [0.5, 0.5])


def test_the_served_certificate_is_read_without_a_client_certificate_or_trust(ca, server):
    served = pki.load_certificates(open(os.path.join(ca, "issued", "server", "cert.pem"), "rb").read(), "cert")[0]
    read = probe.served_certificate("127.0.0.1", server.port, "localhost")
    assert read == {"serial": pki.serial_text(served), "not_after": f"{pki.not_after(served):%Y-%m-%dT%H:%M:%SZ}", "error": None}
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    nothing = probe.served_certificate("127.0.0.1", port, "localhost", timeout=2)
    assert nothing["serial"] is None and nothing["error"].startswith("ConnectionRefusedError")


def test_each_endpoint_is_called_until_it_refuses_a_revoked_certificate_and_the_refusal_is_timed(ca):
    """A server that reloads the new CRL two seconds in, and one that already has it."""
    bundle = os.path.join(ca, "ca-bundle.pem")
    client_cert, client_key = issue(ca, "compromised", profile="client")
    server_cert, server_key = issue(ca, "server", profile="server")
    old_crl = publish_crls(ca)
    late = MTLSServer(server_cert, server_key, bundle, crl=old_crl)
    started = time.time()
    revocation.revoke(ca, [revocation.RevokeRequest(name="compromised", reason=pki.RevocationReason.KEY_COMPROMISE)], CAKeys(), pki.utcnow())
    new_crl = publish_crls(ca)
    early = MTLSServer(server_cert, server_key, bundle, crl=new_crl)
    endpoint = {"kind": "app", "service": "api", "server_name": "localhost", "path": "/", "address": "127.0.0.1", "label": None}
    endpoints = [dict(endpoint, host="late", port=late.port), dict(endpoint, host="early", port=early.port)]
    reloaded = MTLSServer(server_cert, server_key, bundle, crl=new_crl)
    reloaded.close()
    threading.Timer(2.0, lambda: setattr(late, "context", reloaded.context)).start()  # a new context, as an app's reload makes
    try:
        records = probe.until_refused(endpoints, bundle, client_cert, client_key, started, wait=10, interval=0.1)
    finally:
        late.close()
        early.close()
    assert [(r["host"], r["label"], r["refused"], r["client"]) for r in records] == [
        ("late", f"app api:{late.port}", True, "refused"), ("early", f"app api:{early.port}", True, "refused")]
    assert 2.0 <= records[0]["seconds"] < 6 and records[0]["attempts"] > 1
    assert records[1]["seconds"] < 2.0 and records[1]["attempts"] == 1


def test_an_endpoint_that_keeps_accepting_is_reported_after_the_wait(ca, server):
    cert, key = issue(ca, "still-good", profile="client")
    endpoint = {"host": "web-1", "address": "127.0.0.1", "kind": "app", "service": "api", "port": server.port, "server_name": "localhost", "path": "/",
                "label": "app api"}
    record, = probe.until_refused([endpoint], os.path.join(ca, "ca-bundle.pem"), cert, key, time.time(), wait=0.5, interval=0.1)
    assert (record["refused"], record["client"], record["seconds"]) == (False, "accepted", None) and record["attempts"] >= 2


def test_memory_files_fall_back_to_a_private_directory_removed_afterwards(monkeypatch):
    monkeypatch.delattr(probe.os, "memfd_create")
    with probe.memory_files({"new-key": b"secret"}) as paths:
        directory = os.path.dirname(paths["new-key"])
        assert oct(os.stat(directory).st_mode & 0o777) == "0o700" and oct(os.stat(paths["new-key"]).st_mode & 0o777) == "0o600"
        assert open(paths["new-key"], "rb").read() == b"secret"
    assert not os.path.exists(directory)


# ---------------------------------------------------------------------------------------------
# Revocation and CA rollover, enforced by OpenSSL the way nginx's ssl_crl enforces them

CRL_LIFETIME, CRL_RENEW = datetime.timedelta(days=30), pki.RenewBefore.parse("20d")


def publish_crls(ca):
    revocation.ensure_crls(ca, CAKeys(), CRL_LIFETIME, CRL_RENEW, pki.utcnow())
    return os.path.join(ca, revocation.CRL_FILE)


def test_revoked_client_is_refused_on_read_while_others_are_accepted(ca):
    bundle = os.path.join(ca, "ca-bundle.pem")
    revoked_cert, revoked_key = issue(ca, "compromised", profile="client")
    good_cert, good_key = issue(ca, "healthy", profile="client")
    server_cert, server_key = issue(ca, "server", profile="server")
    revocation.revoke(ca, [revocation.RevokeRequest(name="compromised", reason=pki.RevocationReason.KEY_COMPROMISE)], CAKeys(), pki.utcnow())
    server = MTLSServer(server_cert, server_key, bundle, crl=publish_crls(ca))
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            request(server.port, bundle, revoked_cert, revoked_key)
        assert request(server.port, bundle, good_cert, good_key) == "hello healthy"
    finally:
        server.close()


def test_a_ca_without_a_crl_in_the_file_fails_every_client_under_it(ca, tmp_path):
    """Why crl.pem holds one CRL per CA: with chain checks, a missing one refuses everybody."""
    bundle = os.path.join(ca, "ca-bundle.pem")
    good_cert, good_key = issue(ca, "healthy", profile="client")
    server_cert, server_key = issue(ca, "server", profile="server")
    crls = pki.load_crls(open(publish_crls(ca), "rb").read(), "crl.pem")
    assert len(crls) == 2  # root and intermediate
    complete = MTLSServer(server_cert, server_key, bundle, crl=os.path.join(ca, revocation.CRL_FILE))
    try:
        assert request(complete.port, bundle, good_cert, good_key) == "hello healthy"
    finally:
        complete.close()
    only_intermediate = tmp_path / "partial-crl.pem"
    only_intermediate.write_bytes(pki.crl_to_pem(crls[1]))
    server = MTLSServer(server_cert, server_key, bundle, crl=str(only_intermediate))
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            request(server.port, bundle, good_cert, good_key)
    finally:
        server.close()


@pytest.mark.parametrize("kind", [rollover.Kind.ROOT, rollover.Kind.INTERMEDIATE])
def test_rollover_keeps_both_cas_clients_working_until_retire_then_refuses_the_old(ca, kind):
    spec = authority.CASpec(intermediate=True)
    old_client = issue(ca, "old-client", profile="client")
    old_pair = tuple(open(p, "rb").read() for p in old_client)

    def serve_and_ask(client_pem, key_pem, tmp):
        with open(tmp + "-cert.pem", "wb") as handle:
            handle.write(client_pem)
        with open(tmp + "-key.pem", "wb") as handle:
            handle.write(key_pem)
        server_cert, server_key = issue(ca, "server", profile="server")
        bundle = os.path.join(ca, "ca-bundle.pem")
        server = MTLSServer(server_cert, server_key, bundle, crl=publish_crls(ca))
        try:
            return request(server.port, bundle, tmp + "-cert.pem", tmp + "-key.pem")
        except ssl.SSLCertVerificationError:
            raise  # the client refused the server: not what is being tested
        except (ssl.SSLError, ConnectionResetError):
            return "refused"
        finally:
            server.close()

    for phase in rollover.PHASES:
        rollover.begin(ca, phase, kind, spec, CAKeys(), pki.utcnow())
        new_client = issue(ca, "new-client", profile="client") if phase != "trust" else None
        old = serve_and_ask(*old_pair, os.path.join(ca, f"old-{phase}"))
        if phase == "retire":
            assert old == "refused"
        else:
            assert old == "hello old-client"
        if new_client:
            assert serve_and_ask(*(open(p, "rb").read() for p in new_client), os.path.join(ca, f"new-{phase}")) == "hello new-client"
        rollover.verified(ca, phase, CAKeys(), pki.utcnow())


def test_an_expired_crl_refuses_every_client(ca):
    """Why rotation re-signs CRLs long before their next update."""
    bundle = os.path.join(ca, "ca-bundle.pem")
    good_cert, good_key = issue(ca, "healthy", profile="client")
    server_cert, server_key = issue(ca, "server", profile="server")
    revocation.ensure_crls(ca, CAKeys(), CRL_LIFETIME, CRL_RENEW, pki.utcnow() - 40 * datetime.timedelta(days=1))
    server = MTLSServer(server_cert, server_key, bundle, crl=os.path.join(ca, revocation.CRL_FILE))
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            request(server.port, bundle, good_cert, good_key)
    finally:
        server.close()
    assert revocation.ensure_crls(ca, CAKeys(), CRL_LIFETIME, CRL_RENEW, pki.utcnow()).changed  # and the next run replaces it
