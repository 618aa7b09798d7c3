# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An mTLS probe: connect with a client certificate, send one HTTP request (or, to PostgreSQL,
log in), read the answer, and report which certificate the server served. No Ansible imports.

Under TLS 1.3 a server rejects a client certificate after the handshake, so the probe always
reads a response before it calls anything a success.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
import shutil
import socket
import ssl
import struct
import tempfile
import time

from . import pki

# A host's mTLS endpoint, as mtls.fleet.host_transaction and mtls.fleet.trust_check take it.
ENDPOINT_OPTIONS = dict(
    kind=dict(type="str", required=True, choices=["nginx", "app", "haproxy", "postgresql"]),
    service=dict(type="str", required=True),
    port=dict(type="int", required=True),
    server_name=dict(type="str", required=True),
    path=dict(type="str", default="/"),
    status=dict(type="int"),
    identity=dict(type="str"),
    label=dict(type="str"),
    host=dict(type="str"),
    address=dict(type="str"),
    user=dict(type="str", default=""),
    database=dict(type="str", default=""),
)

# PostgreSQL asks for TLS with this startup code before the handshake, and logs in with protocol 3.0.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_PG_PROTOCOL = 196608
# Its SQLSTATEs for a login refused: invalid authorization (no pg_hba line or ident map), bad credentials.
PG_REFUSED_CODES = ("28000", "28P01")

# Node closes a TLS 1.3 connection whose client certificate it refused without sending an alert.
CLOSED_WITHOUT_ANSWER = "the server closed the connection after the handshake without an answer"


def probe(host, port, server_name, ca_bundle, cert=None, key=None, path="/", timeout=5.0, postgresql=None) -> dict:
    """One HTTPS GET over mutual TLS, or with postgresql ({user, database}) a PostgreSQL login.
    Never raises for network or TLS failures: they are results."""
    if postgresql is not None:
        return probe_postgresql(host, port, server_name, ca_bundle, cert, key, postgresql.get("user"), postgresql.get("database"), timeout)
    context, result = _client(ca_bundle, cert, key), _blank_result(host, port, server_name)
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as conn:
                _note_served(conn, result)
                try:
                    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # it refused our certificate and hung up (TLS 1.3, seen with Python 3.13): its alert is read below
                response = _read_all(conn)
    except (OSError, ssl.SSLError, pki.PKIError) as exc:
        result.update(error=f"{type(exc).__name__}: {exc}", seconds=round(time.monotonic() - start, 3))
        return result
    if not response:
        result.update(error=CLOSED_WITHOUT_ANSWER, seconds=round(time.monotonic() - start, 3))
        return result
    head, _sep, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        result.update(error=f"no HTTP response (got {status_line!r})", seconds=round(time.monotonic() - start, 3))
        return result
    result.update(status=int(parts[1]), body=body.decode(errors="replace")[:2000], ok=True, seconds=round(time.monotonic() - start, 3))
    return result


def probe_postgresql(host, port, server_name, ca_bundle, cert=None, key=None, user="", database="", timeout=5.0) -> dict:
    """PostgreSQL over mutual TLS: its SSLRequest, the handshake (verify-full), then a login as
    user to database. status is "ready" once the server accepted the certificate for that role and
    waits for a query; a refusal is the server's error (SQLSTATE 28000 for a certificate pg_hba or
    the ident map does not admit) or the TLS alert."""
    context, result = _client(ca_bundle, cert, key), _blank_result(host, port, server_name)
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            _postgresql_ssl_request(raw)
            with context.wrap_socket(raw, server_hostname=server_name) as conn:
                _note_served(conn, result)
                parameters = b"".join(name + b"\0" + value.encode() + b"\0" for name, value in ((b"user", user), (b"database", database)) if value)
                body = struct.pack("!i", _PG_PROTOCOL) + parameters + b"\0"
                conn.sendall(struct.pack("!i", len(body) + 4) + body)
                status, error = _postgresql_login(conn)
    except (OSError, ssl.SSLError, pki.PKIError, struct.error) as exc:
        result.update(error=f"{type(exc).__name__}: {exc}", seconds=round(time.monotonic() - start, 3))
        return result
    result.update(status=status, error=error, ok=status is not None, seconds=round(time.monotonic() - start, 3))
    return result


def _client(ca_bundle, cert, key):
    """A client context that verifies the server (name and chain) and presents cert, if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _blank_result(host, port, server_name):
    return {"host": host, "port": port, "server_name": server_name, "ok": False, "status": None,
            "serial": None, "not_after": None, "tls_version": None, "error": None, "body": None}


def _note_served(conn, result):
    """The serial and expiry of the certificate the server served, and the TLS version."""
    served = pki.load_certificates(ssl.DER_cert_to_PEM_cert(conn.getpeercert(binary_form=True)).encode(), "served")[0]
    result.update(serial=pki.serial_text(served), not_after=f"{pki.not_after(served):%Y-%m-%dT%H:%M:%SZ}", tls_version=conn.version())


def _postgresql_ssl_request(raw):
    raw.sendall(_PG_SSL_REQUEST)
    answer = raw.recv(1)
    if answer != b"S":
        raise ConnectionRefusedError(f"the PostgreSQL server does not offer TLS (answered {answer!r} to SSLRequest); set ssl = on")


def _postgresql_login(conn):
    """("ready", None) at ReadyForQuery after AuthenticationOk, or (None, the server's error)."""
    buffer = b""
    while True:
        while len(buffer) < 5 or len(buffer) < 1 + struct.unpack("!i", buffer[1:5])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                return None, CLOSED_WITHOUT_ANSWER
            buffer += chunk
        length = struct.unpack("!i", buffer[1:5])[0]
        kind, payload, buffer = buffer[:1], buffer[5:1 + length], buffer[1 + length:]
        if kind == b"E":
            fields = {item[:1]: item[1:].decode(errors="replace") for item in payload.split(b"\0") if item}
            return None, f"PostgreSQL {fields.get(b'S', 'ERROR')} {fields.get(b'C', '')}: {fields.get(b'M', '')}"
        if kind == b"R" and struct.unpack("!i", payload[:4])[0] != 0:
            return None, "PostgreSQL asked for a password: pg_hba.conf does not admit this address by certificate (hostssl ... cert)"
        if kind == b"Z":
            return "ready", None


def served_certificate(host, port, server_name, timeout=5.0, postgresql=False) -> dict:
    """The certificate an endpoint serves, whoever issued it: a handshake that offers no client
    certificate and trusts anything, to read the server's (TLS 1.3 sends it before it asks for ours)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if postgresql:
                _postgresql_ssl_request(raw)
            with context.wrap_socket(raw, server_hostname=server_name) as conn:
                der = conn.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return {"serial": None, "not_after": None, "error": f"{type(exc).__name__}: {exc}"}
    served = pki.load_certificates(ssl.DER_cert_to_PEM_cert(der).encode(), "served")[0]
    return {"serial": pki.serial_text(served), "not_after": f"{pki.not_after(served):%Y-%m-%dT%H:%M:%SZ}", "error": None}


def _read_all(conn) -> bytes:
    chunks = []
    while True:
        try:
            chunk = conn.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def client_verdict(result) -> str:
    """accepted | refused | unknown: what the server made of the client certificate.

    nginx answers 495 (bad certificate) or 496 (none) after the handshake; servers that verify
    in the handshake send a TLS alert instead (Go, Python) or just close the connection (Node).
    A 403 is an allow-list decision about a certificate that verified, so it counts as accepted.
    """
    if result["status"] is not None:
        return "refused" if result["status"] in (495, 496) else "accepted"
    if (result["error"] or "").startswith(("SSLError", "SSLEOFError", "ConnectionResetError", CLOSED_WITHOUT_ANSWER)):
        return "refused"
    if (result["error"] or "").startswith("PostgreSQL") and any(f" {code}:" in result["error"] for code in PG_REFUSED_CODES):
        return "refused"
    return "unknown"


def postgresql_login(endpoint):
    """The probe's postgresql argument for an endpoint (dict), or None for HTTPS."""
    if endpoint.get("kind") != "postgresql":
        return None
    return {"user": endpoint.get("user") or "", "database": endpoint.get("database") or ""}


def check_trust(endpoints, identities: dict, expected: dict, bundle_of, attempts=10, delay=1.0, probe_fn=probe, sleep=time.sleep) -> list:
    """Call every endpoint as each identity named in expected ({name: accepted|refused}), each until
    the server treats it as expected or attempts run out (a reload may still be settling).

    identities: {name: (cert path, key path)}; bundle_of(endpoint) is the trust bundle to verify the
    server with. One record per endpoint and identity, with `ok` when it ended as expected.
    """
    records = []
    for endpoint in endpoints:
        for name, want in expected.items():
            cert, key = identities[name]
            for attempt in range(1, attempts + 1):
                result = probe_fn("127.0.0.1", endpoint["port"], endpoint["server_name"], bundle_of(endpoint), cert, key, endpoint["path"],
                                  **_login_argument(endpoint))
                client = client_verdict(result)
                if client == want or attempt == attempts:
                    break
                sleep(delay)
            records.append({"endpoint": endpoint["label"], "kind": endpoint["kind"], "service": endpoint["service"], "port": endpoint["port"],
                            "identity": name, "expected": want, "client": client, "ok": client == want, "attempts": attempt,
                            "status": result["status"], "error": result["error"]})
    return records


def until_refused(endpoints, ca_bundle, cert, key, started, wait, interval=0.25, probe_fn=probe, clock=time.time, sleep=time.sleep) -> list:
    """Call every endpoint (each in its own thread) with a revoked client certificate until it
    refuses it or wait seconds pass. One record per endpoint; ``seconds`` counts from started (a
    time.time() of the revocation's start, on this host's clock) to the first refusal."""
    def one(endpoint):
        begin, attempts = clock(), 0
        while True:
            attempts += 1
            result = probe_fn(endpoint.get("address") or endpoint["host"], endpoint["port"], endpoint["server_name"], ca_bundle, cert, key,
                              endpoint["path"], timeout=min(5.0, max(wait, 1.0)), **_login_argument(endpoint))
            verdict, now = client_verdict(result), clock()
            if verdict == "refused" or now - begin >= wait:
                return {"host": endpoint["host"], "label": endpoint.get("label") or f"{endpoint['kind']} {endpoint['service']}:{endpoint['port']}",
                        "client": verdict, "refused": verdict == "refused", "attempts": attempts,
                        "seconds": round(now - started, 2) if verdict == "refused" else None,
                        "status": result["status"], "error": result["error"]}
            sleep(interval)

    if not endpoints:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(endpoints))) as pool:
        return list(pool.map(one, endpoints))


def _login_argument(endpoint) -> dict:
    """probe()'s keyword for a PostgreSQL endpoint (none for HTTPS, so simpler probe functions fit)."""
    login = postgresql_login(endpoint)
    return {"postgresql": login} if login is not None else {}


@contextlib.contextmanager
def memory_files(contents: dict):
    """{name: path} of files holding contents ({name: bytes}) for as long as the block runs: anonymous
    memory (memfd) where the kernel has it, so a key never reaches a disk; else a private directory."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = {}
        try:
            for name, data in contents.items():
                fds[name] = os.memfd_create(f"mtls-{name}", os.MFD_CLOEXEC)
                os.write(fds[name], data)
            yield {name: f"/proc/self/fd/{fd}" for name, fd in fds.items()}
        finally:
            for fd in fds.values():
                os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="mtls-identities-")  # mode 0700
    try:
        paths = {}
        for name, data in contents.items():
            paths[name] = os.path.join(directory, name)
            with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)
