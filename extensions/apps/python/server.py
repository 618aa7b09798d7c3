"""mtls-ref-python: a Python server that terminates mutual TLS itself, the way mtls.fleet
expects an app to (a reference app for docs/applications.md and the molecule scenarios).

- Files come from the environment mtls_app writes: MTLS_CERT_FILE, MTLS_KEY_FILE, MTLS_CA_FILE
  and MTLS_CRL_FILE (optional).
- SIGHUP builds a new ssl.SSLContext from all four; each accepted connection is wrapped with the
  newest one, so open connections carry on. Files that fail to load are logged and the previous
  context kept.
- The CRL file is loaded with VERIFY_CRL_CHECK_CHAIN: every CA in the chain must have a current CRL.
- At each reload, open connections of clients the new CRLs revoke are closed: a keep-alive
  connection would otherwise go on serving a client no new handshake accepts. Python's ssl
  cannot read a CRL, so revoked_serials walks its DER for the serials.
- SIGTERM stops accepting and lets in-flight requests finish.
- With systemd socket activation (LISTEN_FDS=1) it serves the inherited socket; otherwise PORT (9443).
"""

import base64
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.environ["MTLS_CERT_FILE"], os.environ["MTLS_KEY_FILE"])
    context.load_verify_locations(os.environ["MTLS_CA_FILE"])
    context.verify_mode = ssl.CERT_REQUIRED
    if os.environ.get("MTLS_CRL_FILE"):
        context.load_verify_locations(os.environ["MTLS_CRL_FILE"])
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    return context


def revoked_serials(path):
    """The serials the PEM CRLs of path list, upper-case hex without leading zeros."""
    serials = set()
    with open(path, encoding="ascii") as handle:
        bodies = re.findall(r"-----BEGIN X509 CRL-----(.*?)-----END X509 CRL-----", handle.read(), re.S)
    for body in bodies:
        der = base64.b64decode("".join(body.split()))
        _tag, start, _end = _tlv(der, 0)  # CertificateList
        _tag, start, end = _tlv(der, start)  # TBSCertList
        sequences = [child for child in _children(der, start, end) if child[0] == 0x30]
        if len(sequences) > 2:  # after signature and issuer: the revoked certificates
            for _tag, entry, _after in _children(der, sequences[2][1], sequences[2][2]):
                _tag, serial_start, serial_end = _tlv(der, entry)
                serials.add(normal_serial(der[serial_start:serial_end].hex()))
    return serials


def normal_serial(text):
    return text.upper().lstrip("0")


def _tlv(der, at):
    """(tag, start of content, end) of the DER element at offset at."""
    length, start = der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[start:start + count], "big"), start + count
    return der[at], start, start + length


def _children(der, start, end):
    while start < end:
        child = _tlv(der, start)
        yield child
        start = child[2]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        peer = self.connection.getpeercert()
        subject = dict(pair for rdn in peer["subject"] for pair in rdn)
        body = json.dumps({"client_identity": subject.get("commonName"), "client_serial": peer["serialNumber"], "app": "python",
                           "host": socket.gethostname()}).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # let in-flight requests finish on SIGTERM

    def __init__(self):
        inherited = os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1"
        super().__init__(("", int(os.environ.get("PORT", "9443"))), Handler, bind_and_activate=not inherited)
        if inherited:
            self.socket.close()
            self.socket = socket.socket(fileno=3)
            print("serving the socket systemd passed", flush=True)
        self.context = None
        self.open, self.open_lock = set(), threading.Lock()  # open connections, so a reload can close those of revoked clients
        self.reload()

    def reload(self):
        try:
            context = load_context()
        except (OSError, ssl.SSLError) as exc:
            if self.context is None:
                sys.exit(f"cannot start: {exc}")
            print(f"reload failed, still serving the previous files: {exc}", file=sys.stderr, flush=True)
            return
        self.context = context
        print("loaded", os.environ["MTLS_CERT_FILE"], flush=True)
        if os.environ.get("MTLS_CRL_FILE"):
            self.close_revoked(revoked_serials(os.environ["MTLS_CRL_FILE"]))

    def close_revoked(self, revoked):
        with self.open_lock:
            conns = list(self.open)
        for conn in conns:
            try:
                serial = (conn.getpeercert() or {}).get("serialNumber", "")
                if normal_serial(serial) in revoked:
                    print(f"closing the connection of revoked client {serial}", flush=True)
                    conn.shutdown(socket.SHUT_RDWR)  # its handler's read ends, and the handler with it
            except (OSError, ValueError):  # it closed meanwhile
                pass

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request.do_handshake()  # in the request's thread, not the accept loop
        except (OSError, ssl.SSLError) as exc:
            print(f"handshake with {client_address[0]} failed: {exc}", file=sys.stderr, flush=True)
            return
        with self.open_lock:
            self.open.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.open_lock:
                self.open.discard(request)

    def handle_error(self, request, client_address):
        print(f"request from {client_address[0]} failed: {sys.exc_info()[1]}", file=sys.stderr, flush=True)


def main():
    server = Server()
    signal.signal(signal.SIGHUP, lambda *_: server.reload())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
