# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An mTLS probe: connect with a client certificate, send one HTTP request, read the answer,
and report which certificate the server served. No Ansible imports.

Under TLS 1.3 a server rejects a client certificate after the handshake, so the probe always
reads a response before it calls anything a success.
"""

from __future__ import annotations

import socket
import ssl
import time

from . import pki

# Node closes a TLS 1.3 connection whose client certificate it refused without sending an alert.
CLOSED_WITHOUT_ANSWER = "the server closed the connection after the handshake without an answer"


def probe(host, port, server_name, ca_bundle, cert=None, key=None, path="/", timeout=5.0) -> dict:
    """One HTTPS GET over mutual TLS. Never raises for network or TLS failures: they are results."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    result = {"host": host, "port": port, "server_name": server_name, "ok": False, "status": None,
              "serial": None, "not_after": None, "tls_version": None, "error": None, "body": None}
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as conn:
                served = pki.load_certificates(ssl.DER_cert_to_PEM_cert(conn.getpeercert(binary_form=True)).encode(), "served")[0]
                result.update(serial=pki.serial_text(served), not_after=f"{pki.not_after(served):%Y-%m-%dT%H:%M:%SZ}",
                              tls_version=conn.version())
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
    return "unknown"
