"""Bounded load on PostgreSQL over mutual TLS, for rotation tests: counts queries sent and failed.

    python3 pg_load.py CONNINFO ROLE OUT [--seconds 300] [--stop-file PATH] [--workers 2]

CONNINFO is a libpq connection string with sslmode=verify-full and the client's identity
(sslcert, sslkey, sslrootcert, sslcrl). Each worker runs psql, the real client, once per query:
a new connection and handshake each time, which must log in as ROLE by certificate. One more
session stays open for the whole run and queries every 0.1 s: a reload must not end it. Stops at
--seconds or when the stop file appears; writes counts as JSON to OUT (the keys of load.py).
"""

import argparse
import json
import os
import subprocess
import threading
import time


def worker(args, counts, lock, deadline):
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        try:
            done = subprocess.run(["psql", args.conninfo, "-XAtq", "-c", "select current_user"], capture_output=True, text=True, timeout=10,
                                  check=False)
            outcome = "ok" if done.returncode == 0 and done.stdout.strip() == args.role else (done.stderr.strip() or done.stdout.strip())
        except subprocess.TimeoutExpired:
            outcome = "psql timed out"
        record(counts, lock, outcome)
        time.sleep(0.02)


def session(args, counts, lock, deadline):
    """One session open through the whole run, as a connection pool keeps them."""
    psql = subprocess.Popen(["psql", args.conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        try:
            psql.stdin.write("select 'alive';\n")
            psql.stdin.flush()
            line = psql.stdout.readline().strip()
        except OSError as exc:
            line = str(exc)
        record(counts, lock, "ok" if line == "alive" else f"the open session ended: {line or psql.poll()}", key="session")
        if line != "alive":
            return
        time.sleep(0.1)
    psql.stdin.close()
    psql.wait(10)


def record(counts, lock, outcome, key="sent"):
    with lock:
        counts[key] += 1
        if outcome != "ok":
            counts["failed"] += 1
            counts["errors"][outcome[:160]] = counts["errors"].get(outcome[:160], 0) + 1


def main():
    parser = argparse.ArgumentParser()
    for name in ("conninfo", "role", "out"):
        parser.add_argument(name)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop-file", default="/run/mtls-load.stop")
    args = parser.parse_args()
    counts = {"sent": 0, "session": 0, "failed": 0, "retried": 0, "errors": {}}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [threading.Thread(target=worker, args=(args, counts, lock, deadline)) for _worker in range(args.workers)]
    threads.append(threading.Thread(target=session, args=(args, counts, lock, deadline)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts["seconds"] = round(time.monotonic() - start, 1)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(counts, handle)


if __name__ == "__main__":
    main()
