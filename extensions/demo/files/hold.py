"""Hold a keep-alive connection to each endpoint and time its end, for revocation tests.

    python3 hold.py CERT KEY CA OUT HOST:PORT [HOST:PORT ...] [--seconds 120]

For each endpoint: one TLS connection with CERT, kept alive, a GET on it every 0.1 s. When the
server closes it (or a request on it fails), the time is noted and new connections are made, one
every 0.1 s, until one is refused (HTTP 495 or 496, or a TLS alert); that time is noted too. OUT
gets one record per endpoint (times in seconds since the epoch, this host's clock) when every
endpoint refused or --seconds passed. OUT.ready appears once every connection answered once.
"""

import argparse
import json
import socket
import ssl
import threading
import time


def connect(host, port, context):
    raw = socket.create_connection((host, port), timeout=5)
    return context.wrap_socket(raw, server_hostname=host)


def get(conn, host):
    """The HTTP status of one GET on conn; raises when the server closed the connection."""
    conn.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while lengths and len(body) < lengths[0]:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        body += chunk
    return int(head.split()[1])


def refused(host, port, context):
    try:
        with connect(host, port, context) as conn:
            return get(conn, host) in (495, 496)
    except (OSError, ssl.SSLError):
        return True


def hold(target, context, deadline, record, ready):
    host, port = target.rsplit(":", 1)
    port = int(port)
    conn = connect(host, port, context)
    record["status_before"] = get(conn, host)
    ready.release()
    while time.time() < deadline:
        try:
            status = get(conn, host)
        except (OSError, ssl.SSLError) as exc:
            record.update(held_closed_at=time.time(), held_error=f"{type(exc).__name__}: {exc}")
            break
        if status in (495, 496):  # nginx would not do this on a kept connection, but count it as an end
            record.update(held_closed_at=time.time(), held_error=f"HTTP {status}")
            break
        record["last_served_at"] = time.time()
        record["served"] = record.get("served", 0) + 1
        time.sleep(0.1)
    conn.close()
    while time.time() < deadline:
        if refused(host, port, context):
            record["refused_at"] = time.time()
            return
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("ca")
    parser.add_argument("out")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    deadline = time.time() + args.seconds
    records = {target: {"target": target} for target in args.targets}
    ready = threading.Semaphore(0)
    threads = [threading.Thread(target=hold, args=(target, context, deadline, records[target], ready)) for target in args.targets]
    for thread in threads:
        thread.start()
    for _thread in threads:
        ready.acquire()
    with open(args.out + ".ready", "w", encoding="utf-8") as handle:
        handle.write(f"{time.time()}\n")
    for thread in threads:
        thread.join()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(list(records.values()), handle, indent=1)


if __name__ == "__main__":
    main()
