"""CA keys in a PKCS#11 token against key files: N P-256 service certificates through
mtls.fleet.certificates in one ansible-playbook task (the whole task, Ansible start-up
included), signed by an intermediate whose key is in SoftHSM2 or in a file, in the same run and
interleaved; beside them the raw cost of N signatures with each key. Prints a markdown table and
writes bench/results/hsm.json.

    python bench/hsm.py [--count 1000] [--repeat 3]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

from ansible_collections.mtls.fleet.plugins.module_utils import authority, custody, pki  # noqa: E402  pylint: disable=wrong-import-position
from issuance import playbook  # noqa: E402  pylint: disable=wrong-import-position

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "bench-pin-1234"


def softhsm_token(work):
    """A SoftHSM2 token of its own; SOFTHSM2_CONF reaches the module (local connection)."""
    os.makedirs(os.path.join(work, "tokens"))
    conf = os.path.join(work, "softhsm2.conf")
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(f"directories.tokendir = {work}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = conf
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", PIN],
                   check=True, capture_output=True)
    return {"module": SOFTHSM, "token_label": "bench", "pin": PIN}


def raw_signatures(key, count):
    """count ECDSA P-256 signatures over certificate-sized data, nothing else."""
    data, algorithm = os.urandom(400), ec.ECDSA(hashes.SHA256())
    start = time.perf_counter()
    for _signature in range(count):
        key.sign(data, algorithm)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = {"raw_file": [], "raw_token": [], "file_first": [], "token_first": [], "file_idempotent": [], "token_idempotent": []}
    spec = authority.CASpec(intermediate=True)
    with tempfile.TemporaryDirectory() as work:
        pkcs11 = softhsm_token(work)
        token = custody.open_token(pkcs11["module"], pkcs11["token_label"], pkcs11["pin"])
        for attempt in range(args.repeat):
            cas = {"file": (os.path.join(work, f"file-{attempt}"), None), "token": (os.path.join(work, f"token-{attempt}"), pkcs11)}
            authority.ensure_ca(cas["file"][0], spec, custody.CAKeys(), pki.utcnow())
            authority.ensure_ca(cas["token"][0], spec, custody.CAKeys(token=token), pki.utcnow())
            runs["raw_file"].append(raw_signatures(authority.load_issuer(cas["file"][0], custody.CAKeys()).key, args.count))
            runs["raw_token"].append(raw_signatures(authority.load_issuer(cas["token"][0], custody.CAKeys(token=token)).key, args.count))
            requests_file = os.path.join(work, "requests.json")
            with open(requests_file, "w", encoding="utf-8") as handle:
                json.dump({"requests": [{"name": f"svc-{i}", "subject_alt_name": [f"DNS:svc-{i}.svc.example.com"]}
                                        for i in range(args.count)]}, handle)
            order = ("file", "token") if attempt % 2 == 0 else ("token", "file")  # neither always goes first
            for phase, want in (("first", "issued"), ("idempotent", "unchanged")):
                for kind in order:
                    elapsed, summary = playbook(cas[kind][0], requests_file, cas[kind][1] and {"pkcs11": cas[kind][1]})
                    assert summary[want] == args.count, summary
                    runs[f"{kind}_{phase}"].append(elapsed)
        token.close()
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "date": datetime.date.today().isoformat(), "count": args.count, "repeat": args.repeat, "cpus": os.cpu_count(),
        "runs_s": runs, "median_s": median,
        "token_over_file_first": median["token_first"] / median["file_first"],
        "token_over_file_raw": median["raw_token"] / median["raw_file"],
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "hsm.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"| {args.count} P-256 certificates, intermediate key in ... (median of {args.repeat}) | file | SoftHSM2 token | token / file |")
    print("|---|---|---|---|")
    for label, key in (("raw signatures only", "raw"), ("first run, whole ansible-playbook", "first"),
                       ("idempotent run, whole ansible-playbook", "idempotent")):
        file_s, token_s = (median[f"raw_{k}"] for k in ("file", "token")) if key == "raw" else (median[f"{k}_{key}"] for k in ("file", "token"))
        digits = 3 if key == "raw" else 2
        print(f"| {label} | {file_s:.{digits}f} s | {token_s:.{digits}f} s | {token_s / file_s:.2f}x |")


if __name__ == "__main__":
    main()
