"""Bounded load through mutual TLS, for rotation tests: counts requests sent and failed.

    python3 load.py HOST PORT CERT KEY CA OUT [--seconds 300] [--stop-file PATH] [--workers 4]
                    [--expect-identity frontend]

Half the workers open a new connection per request; half keep one connection alive and, like
real HTTP clients, retry an idempotent GET once on a fresh connection when the kept one was
closed. Like a well-behaved app, it reloads its certificate, key and trust bundle when the files
change (a CA rollover needs that), keeping the old ones while a pair is half-written. Stops at
--seconds or when the stop file appears; writes counts as JSON to OUT.
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import threading
import time


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the address resolved at start, and verifies the server's name as usual: the
    load measures the servers during a rotation, not the lab's DNS (a lookup that failed once in
    ~25,000 counted as a failed request)."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Contexts:
    """The TLS context of the current files, rebuilt when one of them changes."""

    def __init__(self, args):
        self.paths = (args.cert, args.key, args.ca)
        self.lock = threading.Lock()
        self.stamp, self.context, self.reloads = None, None, 0
        self.get()

    def get(self):
        with self.lock:
            stamp = tuple((st.st_ino, st.st_mtime_ns) for st in map(os.stat, self.paths))
            if stamp != self.stamp:
                try:
                    context = ssl.create_default_context(cafile=self.paths[2])
                    context.load_cert_chain(self.paths[0], self.paths[1])
                except (OSError, ssl.SSLError):
                    if self.context is None:
                        raise
                else:
                    self.stamp, self.context, self.reloads = stamp, context, self.reloads + 1
            return self.context


def worker(args, contexts, keep_alive, counts, lock, deadline):
    conn = None
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        outcome = "ok"
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = PinnedHTTPSConnection(args.host, args.port, args.address, context=contexts.get(), timeout=10)
                conn.request("GET", "/", headers={"Connection": "keep-alive" if keep_alive else "close"})
                reply = conn.getresponse()
                body = reply.read()
                if reply.status != 200 or f'"client_identity": "{args.expect_identity}"'.encode() not in body:
                    outcome = f"HTTP {reply.status}"
                    break
                if not keep_alive or reply.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                outcome = "ok" if attempt == 1 else "retried"
                break
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                outcome = f"{type(exc).__name__}: {exc}"
                if not keep_alive:
                    break  # a new connection that fails is a failure; only a kept one earns a retry
        with lock:
            counts["sent"] += 1
            if outcome == "retried":
                counts["retried"] += 1
            elif outcome != "ok":
                counts["failed"] += 1
                counts["errors"][outcome[:120]] = counts["errors"].get(outcome[:120], 0) + 1
        time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser()
    for name in ("host", "port", "cert", "key", "ca", "out"):
        parser.add_argument(name)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stop-file", default="/run/mtls-load.stop")
    parser.add_argument("--expect-identity", default="frontend", help="the caller identity the server must report")
    args = parser.parse_args()
    args.port = int(args.port)
    args.address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0][4][0]
    contexts = Contexts(args)
    counts = {"sent": 0, "failed": 0, "retried": 0, "errors": {}}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [threading.Thread(target=worker, args=(args, contexts, i % 2 == 1, counts, lock, deadline)) for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts["seconds"] = round(time.monotonic() - start, 1)
    counts["reloads"] = contexts.reloads - 1
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(counts, handle)


if __name__ == "__main__":
    main()
