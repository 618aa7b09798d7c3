"""Bulk issuance benchmark: N P-256 service certificates through mtls.fleet.certificates in one
ansible-playbook task (Ansible start-up included), against a plain cryptography loop doing the
same work (key, certificate, both PEMs), then the idempotent pass, beside Ansible's start-up with
the same inputs (bench/startup.yml: one task, no module) and a plain loop that only reads the
certificates and keys back. Prints a markdown table and writes bench/results/issuance.json.

    python bench/issuance.py [--count 1000] [--repeat 3]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

from ansible_collections.mtls.fleet.plugins.module_utils import authority, pki  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys  # noqa: E402  pylint: disable=wrong-import-position


def raw_loop(issuer, count, directory=None):
    """What any tool must do per certificate: a key, a signed leaf, both serialized; with a
    directory, also written the naive way (plain open/write: not atomic, not synced)."""
    now = pki.utcnow()
    start = time.perf_counter()
    for i in range(count):
        key = pki.KeyType.ECDSA_P256.generate()
        spec = pki.LeafSpec(name=f"svc-{i}", common_name=f"svc-{i}", sans=(f"DNS:svc-{i}.svc.example.com",))
        cert = pki.build_leaf(spec, key.public_key(), issuer, now)
        key_pem, cert_pem = pki.key_to_pem(key), pki.cert_to_pem(cert)
        if directory:
            with open(os.path.join(directory, f"svc-{i}.key"), "wb") as handle:
                handle.write(key_pem)
            with open(os.path.join(directory, f"svc-{i}.crt"), "wb") as handle:
                handle.write(cert_pem)
    return time.perf_counter() - start


def read_loop(store, count):
    """The least an idempotent pass can do: read every certificate and key back and parse them."""
    start = time.perf_counter()
    for i in range(count):
        directory = os.path.join(store, f"svc-{i}")
        with open(os.path.join(directory, "cert.pem"), "rb") as handle:
            pki.load_certificates(handle.read(), "cert.pem")
        with open(os.path.join(directory, "key.pem"), "rb") as handle:
            pki.load_private_key(handle.read(), "key.pem")
    return time.perf_counter() - start


def playbook(ca_dir, requests_file, extra_vars=None, name="issuance.yml"):
    """One bench/issuance.yml run (or another bench playbook): (seconds, the task's summary)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    extra = ["-e", json.dumps(extra_vars)] if extra_vars else []
    start = time.perf_counter()
    done = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"ca_dir={ca_dir}", "-e", f"@{requests_file}", *extra, os.path.join(ROOT, "bench", name)],
        capture_output=True, text=True, cwd=ROOT, env=env, check=True,
    )
    elapsed = time.perf_counter() - start
    if name != "issuance.yml":
        return elapsed, None
    summary = json.loads(done.stdout.split('"issued.summary": ')[1].split("}")[0] + "}")
    return elapsed, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = {"raw": [], "raw_files": [], "first": [], "idempotent": [], "startup": [], "read": []}
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as work:
            ca_dir = os.path.join(work, "ca")
            authority.ensure_ca(ca_dir, authority.CASpec(), CAKeys(), pki.utcnow())
            issuer = authority.load_issuer(ca_dir, CAKeys())
            runs["raw"].append(raw_loop(issuer, args.count))
            os.makedirs(os.path.join(work, "raw"))
            runs["raw_files"].append(raw_loop(issuer, args.count, os.path.join(work, "raw")))
            requests_file = os.path.join(work, "requests.json")
            with open(requests_file, "w", encoding="utf-8") as handle:
                json.dump({"requests": [{"name": f"svc-{i}", "subject_alt_name": [f"DNS:svc-{i}.svc.example.com"]}
                                        for i in range(args.count)]}, handle)
            elapsed, summary = playbook(ca_dir, requests_file)
            assert summary["issued"] == args.count, summary
            runs["first"].append(elapsed)
            elapsed, summary = playbook(ca_dir, requests_file)
            assert summary["unchanged"] == args.count, summary
            runs["idempotent"].append(elapsed)
            runs["startup"].append(playbook(ca_dir, requests_file, name="startup.yml")[0])  # right after: a pair
            runs["read"].append(read_loop(os.path.join(ca_dir, authority.ISSUED), args.count))
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "date": datetime.date.today().isoformat(), "count": args.count, "repeat": args.repeat, "cpus": os.cpu_count(),
        "runs_s": runs, "median_s": median,
        "first_over_raw": median["first"] / median["raw"], "first_over_raw_files": median["first"] / median["raw_files"],
        # Paired per round (the two runs are back to back): the machine's drift between rounds cancels.
        "idempotent_over_startup_s": statistics.median(i - s for i, s in zip(runs["idempotent"], runs["startup"])),
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "issuance.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"| {args.count} P-256 certificates (median of {args.repeat}) | wall time |")
    print("|---|---|")
    print(f"| plain cryptography loop (key + cert + PEMs, no files) | {median['raw']:.2f} s |")
    print(f"| plain cryptography loop writing the files (open/write, no sync) | {median['raw_files']:.2f} s |")
    print(f"| mtls.fleet.certificates, first run, whole ansible-playbook | {median['first']:.2f} s |")
    print(f"| mtls.fleet.certificates, idempotent run, whole ansible-playbook | {median['idempotent']:.2f} s |")
    print(f"| ansible-playbook start-up with the same inputs (one task, no module) | {median['startup']:.2f} s |")
    print(f"| plain loop reading the certificates and keys back | {median['read']:.2f} s |")
    print(f"| idempotent run - start-up, median of the rounds' differences (target: 0.5 s) | {result['idempotent_over_startup_s']:.2f} s |")
    print(f"| first run / raw loop | {result['first_over_raw']:.1f}x |")
    print(f"| first run / raw loop writing files | {result['first_over_raw_files']:.1f}x |")


if __name__ == "__main__":
    main()
