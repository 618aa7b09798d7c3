"""mtls-ref-python-client: a Python requests client that picks up a rotated identity without a
restart (a reference client for docs/applications.md, tested in tests/unit/test_reference_apps.py).

    python3 client.py URL SECONDS

Before each request it compares the identity and bundle files (MTLS_CERT_FILE, MTLS_KEY_FILE,
MTLS_CA_FILE) with what it loaded; when they changed and load as a pair, it starts a new
requests.Session (its pooled connections then make new handshakes with the new identity) and
closes the old one.
Prints {"sent", "failed", "client_serials"}: the serials the server reported seeing, in order.
"""

import json
import os
import ssl
import sys
import time

import requests

FILES = (os.environ["MTLS_CERT_FILE"], os.environ["MTLS_KEY_FILE"], os.environ["MTLS_CA_FILE"])


class Client:
    def __init__(self):
        self.stamp, self.session = None, None

    def current(self):
        stamp = tuple((os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in FILES)
        if stamp != self.stamp and self.loads():
            if self.session is not None:
                self.session.close()
            self.session = requests.Session()
            self.stamp = stamp
        return self.session

    def get(self, url, **kwargs):
        # cert and verify per request: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the environment
        # would override a Session's verify (requests#3829) and trust the system CAs instead.
        return self.current().get(url, cert=FILES[:2], verify=FILES[2], **kwargs)  # the cert file holds the whole chain

    def loads(self):
        """Whether the files load as a pair; while they are half-written, keep the current session."""
        try:
            ssl.create_default_context(cafile=FILES[2]).load_cert_chain(*FILES[:2])
        except (OSError, ssl.SSLError):
            return self.session is None
        return True


def main():
    url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
    client, result = Client(), {"sent": 0, "failed": 0, "client_serials": []}
    while time.monotonic() < deadline:
        result["sent"] += 1
        try:
            reply = client.get(url, timeout=5)
            reply.raise_for_status()
            serial = reply.json()["client_serial"]
        except (requests.RequestException, OSError, ValueError) as exc:
            result["failed"] += 1
            print(exc, file=sys.stderr)
        else:
            if not result["client_serials"] or result["client_serials"][-1] != serial:
                result["client_serials"].append(serial)
        time.sleep(0.02)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
