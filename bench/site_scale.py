"""Rollout benchmark: mtls.fleet.site on 4, 12 and 24 lab hosts (each: one service identity and
an nginx mTLS server), first run and idempotent re-run, keys made centrally and on the hosts.
Writes bench/results/site_scale.json and the plot docs/site_scale.svg, prints a markdown table.

    python bench/site_scale.py [--sizes 4 12 24]

The baseline is the community.crypto small-CA recipe measured on the same kind of lab
(shared/field-notes.md): 19 / 60 / 120 s first run, 16 / 51 / 94 s re-run at 4 / 12 / 24 hosts.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = "mtls-bench"
BASELINE = {4: (19, 16), 12: (60, 51), 24: (120, 94)}
GROUP_VARS = """\
mtls_ca_path: {ca}
mtls_certs_keys_on_hosts: {keys_on_hosts}
mtls_certs_services:
  - name: svc
mtls_nginx_servers:
  - service: svc
    listen: 8443
    proxy_pass: http://127.0.0.1:8080
"""


def run(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)


def rollout(inventory, fleet_inventory):
    env = dict(os.environ, MTLS_LAB=LAB, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    start = time.perf_counter()
    done = run(["ansible-playbook", "-i", inventory, "-i", fleet_inventory, "mtls.fleet.site"], env)
    elapsed = time.perf_counter() - start
    recap = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
             for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", done.stdout, re.M)}
    return elapsed, recap


def measure(size, keys_on_hosts, work):
    hosts = [f"svc-{i:02d}" for i in range(1, size + 1)]
    run(["scripts/lab", "up", *hosts], dict(os.environ, MTLS_LAB=LAB))
    fleet = os.path.join(work, f"fleet-{size}-{keys_on_hosts}")
    os.makedirs(os.path.join(fleet, "group_vars"))
    with open(os.path.join(fleet, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write("all:\n  children:\n    mtls_hosts:\n      hosts:\n")
        handle.write("".join(f"        {h}:\n" for h in hosts))
        handle.write("    mtls_nginx:\n      children:\n        mtls_hosts:\n")
    with open(os.path.join(fleet, "group_vars", "all.yml"), "w", encoding="utf-8") as handle:
        handle.write(GROUP_VARS.format(ca=os.path.join(fleet, "ca"), keys_on_hosts=str(keys_on_hosts).lower()))
    inventory = os.path.join(ROOT, ".lab", LAB, "inventory.yml")
    first, recap = rollout(inventory, os.path.join(fleet, "hosts.yml"))
    rerun, recap2 = rollout(inventory, os.path.join(fleet, "hosts.yml"))
    host = recap[hosts[0]]
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values()), recap
    assert all(r["changed"] == 0 for r in recap2.values()), recap2
    return {"hosts": size, "keys_on_hosts": keys_on_hosts, "first_s": round(first, 1), "rerun_s": round(rerun, 1),
            "tasks_per_host": host["ok"],  # every task that ran on it, local steps (asserts, facts) included
            "first_per_host_s": round(first / size, 2), "rerun_per_host_s": round(rerun / size, 2)}


def svg(rows):
    """Wall time against hosts: ours (both key modes) and the baseline, first run and re-run."""
    width, height, pad = 640, 400, 50
    sizes = sorted({r["hosts"] for r in rows})
    top = max(max(b) for b in BASELINE.values())

    def x(hosts):
        return pad + (width - 2 * pad) * hosts / max(sizes)

    def y(seconds):
        return height - pad - (height - 2 * pad) * seconds / top

    series = [
        ("community.crypto recipe, first run", "#c0392b", [(n, BASELINE[n][0]) for n in sizes if n in BASELINE], "6,4"),
        ("community.crypto recipe, re-run", "#e67e22", [(n, BASELINE[n][1]) for n in sizes if n in BASELINE], "6,4"),
    ]
    for keys, colours in ((False, ("#1f6fb2", "#5dade2")), (True, ("#1e8449", "#58d68d"))):
        label = "keys on hosts" if keys else "central keys"
        mine = sorted((r for r in rows if r["keys_on_hosts"] == keys), key=lambda r: r["hosts"])
        series.append((f"mtls.fleet.site, {label}, first run", colours[0], [(r["hosts"], r["first_s"]) for r in mine], ""))
        series.append((f"mtls.fleet.site, {label}, re-run", colours[1], [(r["hosts"], r["rerun_s"]) for r in mine], ""))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">hosts</text>',
             f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">wall time (s)</text>']
    for n in sizes:
        parts.append(f'<text x="{x(n)}" y="{height - pad + 15}" text-anchor="middle">{n}</text>')
    for s in range(0, int(top) + 1, 20):
        parts.append(f'<text x="{pad - 6}" y="{y(s) + 4}" text-anchor="end">{s}</text>')
    for index, (label, colour, points, dash) in enumerate(series):
        path = " ".join(f"{x(n):.1f},{y(s):.1f}" for n, s in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        parts += [f'<circle cx="{x(n):.1f}" cy="{y(s):.1f}" r="3" fill="{colour}"/>' for n, s in points]
        parts.append(f'<text x="{pad + 10}" y="{pad + 14 * index}" fill="{colour}">{label}</text>')
    return "\n".join(parts + ["</svg>"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 12, 24])
    args = parser.parse_args()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as work:
            for size in args.sizes:
                for keys_on_hosts in (False, True):
                    rows.append(measure(size, keys_on_hosts, work))
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        run(["scripts/lab", "down"], dict(os.environ, MTLS_LAB=LAB))
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "site_scale.json"), "w", encoding="utf-8") as handle:
        json.dump({"date": datetime.date.today().isoformat(), "forks": 10, "rows": rows}, handle, indent=2)
    with open(os.path.join(ROOT, "docs", "site_scale.svg"), "w", encoding="utf-8") as handle:
        handle.write(svg(rows))
    print("| hosts | keys | first run | re-run | first / host | re-run / host | tasks per host | baseline first / re-run |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = BASELINE.get(r["hosts"], ("-", "-"))
        print(f"| {r['hosts']} | {'on hosts' if r['keys_on_hosts'] else 'central'} | {r['first_s']} s | {r['rerun_s']} s | "
              f"{r['first_per_host_s']} s | {r['rerun_per_host_s']} s | {r['tasks_per_host']} | {base[0]} / {base[1]} s |")


if __name__ == "__main__":
    main()
