"""What the CA store's host records cost an idempotent pass: the judge of 1,000 certificates with
requests that name their host (the roles' requests, checked against issued/<name>/host), without
(the modules used directly), and on a store written before the records (checked by common name).

    python bench/owner_check.py [--count 1000] [--repeat 7]

In-process (authority.unchanged_outcomes, as the certificates action judges a pass with nothing
due); prints the median seconds of each.
"""

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "collections"))

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys  # noqa: E402  pylint: disable=wrong-import-position


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ca = os.path.join(tempfile.mkdtemp(), "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    raw = [{"name": f"h{i}-svc", "common_name": "svc", "subject_alt_name": [f"DNS:h{i}"], "host": f"h{i}"} for i in range(args.count)]
    named = authority.parse_requests(raw, {})
    unnamed = authority.parse_requests([{k: v for k, v in r.items() if k != "host"} for r in raw], {})
    store = os.path.join(ca, authority.ISSUED)
    authority.issue(store, named, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow())
    judge = authority.load_issuer(ca, None)

    def seconds(requests):
        runs = []
        for _round in range(args.repeat + 1):
            start = time.perf_counter()
            assert authority.unchanged_outcomes(store, requests, judge, pki.Policy(), pki.utcnow()) is not None
            runs.append(time.perf_counter() - start)
        return statistics.median(runs[1:])  # the first warms the file cache

    with_records, without_host = seconds(named), seconds(unnamed)
    for record in glob.glob(os.path.join(store, ".*.gen*", authority.HOST_FILE)):
        os.unlink(record)
    legacy = seconds(named)
    print(f"| {args.count} certificates, idempotent judge | requests with host | without host | store without host records |")
    print("|---|---|---|---|")
    print(f"| median of {args.repeat} | {with_records:.3f} s | {without_host:.3f} s | {legacy:.3f} s |")


if __name__ == "__main__":
    main()
