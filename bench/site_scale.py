"""Rollout benchmark, side by side with community.crypto's guide flow in the same run.

    python bench/site_scale.py [--sizes 8 16 48] [--baseline-sizes 16 48] [--baseline DIR]

Per size N: a fleet of 4 services with N/4 replicas each (one host per replica: its service
identity and an nginx mTLS server), keys made centrally. mtls.fleet.site first run and idempotent
re-run, then under load an idempotent re-run again and a forced mtls.fleet.rotate (default
batches: at most 25% of a service's replicas at once): every host answers through nginx with
extensions/demo/files/echo.py, and extensions/demo/files/load.py runs on an extra lab host
(load-01) against one replica of each service (its failed requests are reported; the run stops if
one failed). The load shares the lab's cores, so the rotation is compared with both re-runs.
For the sizes in --baseline-sizes, ../shared/baseline-cc (`run.sh N 1`: the guide's flow, its
first run and re-run) runs right before, on its own lab of the same size.

Tasks per host = the play recap's `ok` count of a host that carries no run-once task (the median
host), and of the first host, which also carries the play's run-once tasks (issuance, CRLs,
tables). Controller CPU = user + system seconds of ansible-playbook and its workers (the
baseline's from its own /usr/bin/time); lab CPU = the CPU seconds of every lab container (from
podman's cgroup). Writes bench/results/site_scale.json and the plot docs/site_scale.svg, prints
markdown tables and two cost models fitted (least squares) on every size but the largest, each with its error at the
largest: wall seconds = fixed + per host x N, and a CPU model (the lab shares the controller's
cores: wall = CPU / (cores x utilization), CPU = fixed + per host x N) whose controller term
says what 500 and 1,000 hosts cost a controller of this size when the hosts are elsewhere.
"""

import argparse
import csv
import datetime
import json
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = "mtls-bench"
DEMO_FILES = os.path.join(ROOT, "extensions", "demo", "files")
SERVICES = ["api", "backend", "web", "worker"]
GROUP_VARS = """\
mtls_certs_services:
  - name: "{{ mtls_bench_service }}"
mtls_nginx_servers:
  - service: "{{ mtls_bench_service }}"
    listen: 8443
    proxy_pass: http://127.0.0.1:8080
"""


def run(cmd, env=None, cwd=ROOT):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return done


def playbook(name, inventories, *args):
    """(wall s, controller CPU s, lab CPU s or None, the recap per host)."""
    env = dict(os.environ, MTLS_LAB=LAB, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start, used, lab_used = time.perf_counter(), _children_cpu(), _lab_cpu()
    done = run(["ansible-playbook", *[f"-i{i}" for i in inventories], name, *args], env)
    elapsed, cpu, lab_after = time.perf_counter() - start, _children_cpu() - used, _lab_cpu()
    lab_cpu = None if lab_used is None or lab_after is None else lab_after - lab_used
    recap = {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
             for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", done.stdout, re.M)}
    bad = {h: r for h, r in recap.items() if r["failed"] or r["unreachable"]}
    if bad:
        raise SystemExit(f"{name}: {bad}")
    return elapsed, cpu, lab_cpu, recap


def _children_cpu():
    """CPU seconds (user + system) of finished child processes: ansible-playbook and its workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lab_cpu():
    """CPU seconds used so far by every podman container (the lab's hosts: sshd, Python modules,
    nginx, the load generator), from the cgroup podman puts them in; None where it is not found."""
    try:
        with open("/sys/fs/cgroup/cpuacct/libpod_parent/cpuacct.usage", encoding="ascii") as handle:  # cgroup v1, ns
            return int(handle.read()) / 1e9
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/machine.slice/cpu.stat", "/sys/fs/cgroup/libpod_parent/cpu.stat"):  # cgroup v2, us
        try:
            with open(path, encoding="ascii") as handle:
                return int(dict(line.split() for line in handle)["usage_usec"]) / 1e6
        except OSError:
            continue
    return None


def baseline(size, directory, work):
    """community.crypto's guide flow (first run, re-run) on its own lab: its run.sh, unchanged."""
    env = dict(os.environ, WORK=os.path.join(work, "ccb"), RESULTS=os.path.join(work, "ccb-results"))
    run(["./run.sh", str(size), "1"], env, cwd=directory)
    with open(os.path.join(env["RESULTS"], "runs.tsv"), encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["N"] == str(size)][-2:]
    first, rerun = (next(r for r in rows if r["run"] == n) for n in ("1", "2"))
    return {"first_s": float(first["wall_s"]), "rerun_s": float(rerun["wall_s"]), "tasks_per_host": int(rerun["ok_per_host"]),
            "first_cpu_s": float(first["user_s"]) + float(first["sys_s"]), "rerun_cpu_s": float(rerun["user_s"]) + float(rerun["sys_s"]),
            "curl_with_cert": rerun["curl_with_cert"], "load_before": float(first["load1_before"])}


def measure(size, work):
    hosts = [f"svc-{i:02d}" for i in range(1, size + 1)]
    run(["scripts/lab", "up", *hosts, "load-01"], dict(os.environ, MTLS_LAB=LAB))
    fleet = os.path.join(work, f"fleet-{size}")
    os.makedirs(os.path.join(fleet, "group_vars"))
    with open(os.path.join(fleet, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write("all:\n  children:\n    mtls_hosts:\n      hosts:\n")
        handle.write("".join(f"        {h}: {{mtls_bench_service: {SERVICES[i % len(SERVICES)]}}}\n" for i, h in enumerate(hosts)))
        handle.write("    mtls_nginx:\n      children:\n        mtls_hosts:\n")
    with open(os.path.join(fleet, "group_vars", "all.yml"), "w", encoding="utf-8") as handle:
        handle.write(f"mtls_ca_path: {os.path.join(fleet, 'ca')}\n")
    with open(os.path.join(fleet, "group_vars", "mtls_hosts.yml"), "w", encoding="utf-8") as handle:  # not load-01
        handle.write(GROUP_VARS)
    inventories = [os.path.join(ROOT, ".lab", LAB, "inventory.yml"), os.path.join(fleet, "hosts.yml")]
    first, first_cpu, first_lab = playbook("mtls.fleet.site", inventories)[:3]
    rerun, rerun_cpu, rerun_lab, recap = playbook("mtls.fleet.site", inventories)
    assert all(r["changed"] == 0 for r in recap.values()), recap
    targets = start_load(hosts)
    time.sleep(3)
    try:
        # The load shares the lab's two cores: the rotation is compared with a re-run under the same load too.
        rerun_loaded, *_cpu, loaded_recap = playbook("mtls.fleet.site", inventories)
        assert all(r["changed"] == 0 for r in loaded_recap.values()), loaded_recap
        rotate, rotate_cpu, rotate_lab, rotated = playbook("mtls.fleet.rotate", inventories, "-e", "mtls_rotate_force=all")
    finally:
        load = stop_load(targets)
    assert all(rotated[h]["changed"] > 0 for h in hosts), rotated
    assert load["targets"] == len(targets) and load["sent"] > 100 and load["failed"] == 0, load
    oks = sorted(recap[h]["ok"] for h in hosts)
    return {"hosts": size, "first_s": round(first, 1), "rerun_s": round(rerun, 1), "rerun_loaded_s": round(rerun_loaded, 1),
            "rotate_s": round(rotate, 1), "load": load,
            "first_cpu_s": round(first_cpu, 1), "rerun_cpu_s": round(rerun_cpu, 1), "rotate_cpu_s": round(rotate_cpu, 1),
            "first_lab_cpu_s": _rounded(first_lab), "rerun_lab_cpu_s": _rounded(rerun_lab), "rotate_lab_cpu_s": _rounded(rotate_lab),
            "tasks_per_host": int(statistics.median(oks)), "tasks_first_host": recap[hosts[0]]["ok"],
            "load_after": os.getloadavg()[0]}


def _rounded(seconds):
    return None if seconds is None else round(seconds, 1)


def podman(*args, stdin=None):
    return subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def start_load(hosts):
    """Echo backends on every host; on load-01, one load per service (its first replica), calling
    with svc-01's identity (read from the host, kept in load-01 only)."""
    for host in hosts:
        podman("cp", os.path.join(DEMO_FILES, "echo.py"), f"{LAB}-{host}:/root/echo.py")
        podman("exec", f"{LAB}-{host}", "systemd-run", "--unit=bench-echo", "--collect", "/usr/bin/python3", "/root/echo.py")
    loader = f"{LAB}-load-01"
    podman("cp", os.path.join(DEMO_FILES, "load.py"), f"{loader}:/root/load.py")
    podman("exec", loader, "mkdir", "-m", "0700", "-p", "/root/id")
    for name in ("cert.pem", "key.pem", "ca-bundle.pem"):
        content = podman("exec", f"{LAB}-{hosts[0]}", "cat", f"/etc/mtls/{SERVICES[0]}/{name}")
        podman("exec", "-i", loader, "sh", "-c", f"umask 077; cat > /root/id/{name}", stdin=content)
    targets = hosts[:len(SERVICES)]
    for host in targets:
        podman("exec", loader, "systemd-run", f"--unit=bench-load-{host}", "--collect", "/usr/bin/python3", "/root/load.py", host, "8443",
               "/root/id/cert.pem", "/root/id/key.pem", "/root/id/ca-bundle.pem", f"/root/load-{host}.json", "--seconds", "900",
               "--stop-file", "/run/bench-load.stop", "--workers", "2", "--expect-identity", SERVICES[0])
    return targets


def stop_load(targets):
    loader = f"{LAB}-load-01"
    time.sleep(3)
    podman("exec", loader, "touch", "/run/bench-load.stop")
    counts = {}
    for host in targets:
        for _attempt in range(60):
            done = subprocess.run(["podman", "exec", loader, "cat", f"/root/load-{host}.json"], capture_output=True, text=True, check=False)
            if done.returncode == 0:
                counts[host] = json.loads(done.stdout)
                break
            time.sleep(0.5)
    return {"sent": sum(c["sent"] for c in counts.values()), "failed": sum(c["failed"] for c in counts.values()),
            "targets": len(counts), "errors": [e for c in counts.values() for e in c["errors"]]}


def fit_line(points):
    """(fixed, per host): the least-squares line through (hosts, value) points."""
    xs, ys = [x for x, _y in points], [y for _x, y in points]
    per_host = statistics.covariance(xs, ys) / statistics.variance(xs)
    return statistics.mean(ys) - per_host * statistics.mean(xs), per_host


def model(rows, key):
    """seconds = fixed + per_host x N fitted on every size but the largest; the error at the largest."""
    fitted, largest = rows[:-1], rows[-1]
    fixed, per_host = fit_line([(r["hosts"], r[key]) for r in fitted])
    predicted = fixed + per_host * largest["hosts"]
    return {"fixed_s": round(fixed, 1), "per_host_s": round(per_host, 3), "fitted_on": [r["hosts"] for r in fitted],
            "checked_at": largest["hosts"], "predicted_s": round(predicted, 1), "measured_s": largest[key],
            "error": round((predicted - largest[key]) / largest[key], 2),
            "500_s": round(fixed + per_host * 500), "1000_s": round(fixed + per_host * 1000)}


def cpu_model(rows, run):
    """The lab is CPU-bound: wall = (controller CPU + lab CPU) / (cores x utilization), each CPU
    term fixed + per host x N fitted on every size but the largest, the utilization their mean.
    Checked at the largest size. With the hosts elsewhere only the controller's CPU stays on its cores."""
    cores = os.cpu_count()
    fitted, largest = rows[:-1], rows[-1]
    if any(r.get(f"{run}_lab_cpu_s") is None for r in rows):
        return None

    def fit(key):
        return fit_line([(r["hosts"], r[key]) for r in fitted])

    (ctrl_fixed, ctrl_per_host), (lab_fixed, lab_per_host) = fit(f"{run}_cpu_s"), fit(f"{run}_lab_cpu_s")
    utilization = statistics.mean((r[f"{run}_cpu_s"] + r[f"{run}_lab_cpu_s"]) / (r[f"{run}_s"] * cores) for r in fitted)

    def wall(hosts, lab=True):
        cpu = ctrl_fixed + ctrl_per_host * hosts + (lab_fixed + lab_per_host * hosts if lab else 0)
        return cpu / (cores * utilization)

    predicted = wall(largest["hosts"])
    return {"controller_cpu_per_host_s": round(ctrl_per_host, 3), "lab_cpu_per_host_s": round(lab_per_host, 3),
            "utilization": round(utilization, 2), "checked_at": largest["hosts"], "predicted_s": round(predicted, 1),
            "measured_s": largest[f"{run}_s"], "error": round((predicted - largest[f"{run}_s"]) / largest[f"{run}_s"], 2),
            "500_controller_only_s": round(wall(500, lab=False)), "1000_controller_only_s": round(wall(1000, lab=False))}


def svg(rows):
    """Wall time against hosts: mtls.fleet (first run, re-run, forced rotation) and the baseline."""
    width, height, pad = 640, 400, 50
    top = max(max(r["first_s"], r["rotate_s"], r.get("baseline", {}).get("first_s", 0), r.get("baseline", {}).get("rerun_s", 0))
              for r in rows) * 1.1
    last = max(r["hosts"] for r in rows)

    def point(hosts, seconds):
        return f"{pad + (width - 2 * pad) * hosts / last:.1f},{height - pad - (height - 2 * pad) * seconds / top:.1f}"

    series = [("community.crypto guide flow, first run", "#c0392b", "6,4", [(r["hosts"], r["baseline"]["first_s"]) for r in rows if "baseline" in r]),
              ("community.crypto guide flow, re-run", "#e67e22", "6,4", [(r["hosts"], r["baseline"]["rerun_s"]) for r in rows if "baseline" in r]),
              ("mtls.fleet.site, first run", "#1f6fb2", "", [(r["hosts"], r["first_s"]) for r in rows]),
              ("mtls.fleet.site, re-run", "#5dade2", "", [(r["hosts"], r["rerun_s"]) for r in rows]),
              ("mtls.fleet.rotate, forced, under load", "#1e8449", "", [(r["hosts"], r["rotate_s"]) for r in rows])]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<polyline points="{point(0, top)} {point(0, 0)} {point(last, 0)}" fill="none" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">hosts</text>',
             f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">wall time (s)</text>']
    for r in rows:
        x = point(r["hosts"], 0).split(",")[0]
        parts.append(f'<text x="{x}" y="{height - pad + 15}" text-anchor="middle">{r["hosts"]}</text>')
    for seconds in range(0, int(top) + 1, 20):
        y = point(0, seconds).split(",")[1]
        parts.append(f'<text x="{pad - 6}" y="{float(y) + 4}" text-anchor="end">{seconds}</text>')
    for index, (label, colour, dash, points) in enumerate(series):
        parts.append(f'<polyline points="{" ".join(point(n, t) for n, t in points)}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'stroke-dasharray="{dash}"/>')
        parts += [f'<circle cx="{point(n, t).split(",")[0]}" cy="{point(n, t).split(",")[1]}" r="3" fill="{colour}"/>' for n, t in points]
        parts.append(f'<text x="{pad + 10}" y="{pad + 14 * index}" fill="{colour}">{label}</text>')
    return "\n".join(parts + ["</svg>"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 48])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[16, 48])
    parser.add_argument("--baseline", default=os.path.join(os.path.dirname(ROOT), "shared", "baseline-cc"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in sorted(args.sizes):
            row = {}
            if size in args.baseline_sizes:
                row["baseline"] = baseline(size, args.baseline, work)
                print(json.dumps({"hosts": size, "baseline": row["baseline"]}), flush=True)
            try:
                row.update(measure(size, work))
            finally:
                run(["scripts/lab", "down"], dict(os.environ, MTLS_LAB=LAB))
            rows.append(row)
            print(json.dumps(row), flush=True)
    models = {key: model(rows, key) for key in ("first_s", "rerun_s", "rotate_s")} if len(rows) >= 3 else {}
    cpu_models = {run: cpu_model(rows, run) for run in ("first", "rerun", "rotate")} if len(rows) >= 3 else {}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "site_scale.json"), "w", encoding="utf-8") as handle:
        json.dump({"date": datetime.date.today().isoformat(), "forks": 10, "cpus": os.cpu_count(), "rows": rows,
                   "model": models, "cpu_model": cpu_models}, handle, indent=2)
    with open(os.path.join(ROOT, "docs", "site_scale.svg"), "w", encoding="utf-8") as handle:
        handle.write(svg(rows))
    print("| hosts | site first run | re-run | forced rotate (requests, failed) | tasks per host (first host) | baseline first / re-run (tasks) "
          "| first / baseline | re-run / baseline | rotate / re-run | re-run under load | rotate / re-run under load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r.get("baseline")
        side = (f"{b['first_s']} / {b['rerun_s']} s ({b['tasks_per_host']}) | {r['first_s'] / b['first_s']:.2f} | "
                f"{r['rerun_s'] / b['rerun_s']:.2f}") if b else "- | - | -"
        print(f"| {r['hosts']} | {r['first_s']} s | {r['rerun_s']} s | {r['rotate_s']} s ({r['load']['sent']:,}, {r['load']['failed']}) | "
              f"{r['tasks_per_host']} ({r['tasks_first_host']}) | "
              f"{side} | {r['rotate_s'] / r['rerun_s']:.2f} | {r['rerun_loaded_s']} s | {r['rotate_s'] / r['rerun_loaded_s']:.2f} |")
    if models:
        print("\n| run | fixed | per host | predicted at {0} | measured at {0} | error | 500 hosts | 1,000 hosts |".format(rows[-1]["hosts"]))
        print("|---|---|---|---|---|---|---|---|")
        for key, m in models.items():
            print(f"| {key[:-2].replace('_', ' ')} | {m['fixed_s']} s | {m['per_host_s']} s | {m['predicted_s']} s | {m['measured_s']} s | "
                  f"{m['error']:+.0%} | {m['500_s']} s | {m['1000_s']} s |")
    if cpu_models and all(cpu_models.values()):
        print(f"\n| run | controller CPU per host | lab CPU per host | utilization of {os.cpu_count()} cores | predicted at {rows[-1]['hosts']} "
              f"| measured | error | 500 hosts, controller only | 1,000 hosts, controller only |")
        print("|---|---|---|---|---|---|---|---|---|")
        for run_name, m in cpu_models.items():
            print(f"| {run_name} | {m['controller_cpu_per_host_s']} s | {m['lab_cpu_per_host_s']} s | {m['utilization']:.0%} | "
                  f"{m['predicted_s']} s | {m['measured_s']} s | {m['error']:+.0%} | {m['500_controller_only_s']} s | "
                  f"{m['1000_controller_only_s']} s |")


if __name__ == "__main__":
    main()
