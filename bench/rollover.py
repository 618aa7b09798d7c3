"""CA rollover and revocation benchmark on the demo fleet (4 lab hosts: 2 backends behind nginx
mTLS, a frontend, a client): wall time of each operation, as an operator runs it.

    python bench/rollover.py [--rounds 3]

Per round: an idempotent rollout (to compare with the figures from before CRLs existed, which
add one module call on the CA host and one copy per host), a root rollover (3 phases), an
intermediate rollover, revoking the client host, and the rollout that re-issues it.
Writes bench/results/rollover.json and prints a markdown table.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = "mtls-bench-rollover"
HOSTS = ["backend-1", "backend-2", "frontend-1", "client-1"]


def playbook(env, *args):
    start = time.perf_counter()
    subprocess.run(["ansible-playbook", "-i", os.path.join(ROOT, ".lab", LAB, "inventory.yml"),
                    "-i", os.path.join(ROOT, "extensions", "demo", "inventory", "hosts.yml"), *args],
                   cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ, MTLS_LAB=LAB, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               MTLS_DEMO_CA_PATH=os.path.join(ROOT, ".lab", LAB, "ca"))
    subprocess.run(["scripts/lab", "up", *HOSTS], cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        playbook(env, "extensions/demo/echo_app.yml")
        playbook(env, "mtls.fleet.site")
        times = {"site re-run (idempotent)": [], "root rollover": [], "intermediate rollover": [],
                 "revoke one host": [], "site re-issuing it": []}
        for _round in range(args.rounds):
            times["site re-run (idempotent)"].append(playbook(env, "mtls.fleet.site"))
            times["root rollover"].append(playbook(env, "mtls.fleet.ca_rollover", "-e", "mtls_ca_rollover=root"))
            times["intermediate rollover"].append(playbook(env, "mtls.fleet.ca_rollover", "-e", "mtls_ca_rollover=intermediate"))
            times["revoke one host"].append(playbook(env, "mtls.fleet.revoke", "-e", "revoke_hosts=client-1"))
            times["site re-issuing it"].append(playbook(env, "mtls.fleet.site"))
    finally:
        subprocess.run(["scripts/lab", "down"], cwd=ROOT, env=env, check=False, capture_output=True)
    rows = [{"operation": name, "median_s": round(statistics.median(values), 1), "min_s": round(min(values), 1),
             "max_s": round(max(values), 1), "runs": len(values)} for name, values in times.items()]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "rollover.json"), "w", encoding="utf-8") as handle:
        json.dump({"when": datetime.datetime.now(datetime.timezone.utc).isoformat(), "hosts": len(HOSTS), "rows": rows}, handle, indent=1)
    print("| operation (4 hosts) | median s | min–max s | runs |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['operation']} | {row['median_s']} | {row['min_s']}–{row['max_s']} | {row['runs']} |")


if __name__ == "__main__":
    main()
