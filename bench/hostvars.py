"""What it costs when every host reads every host's variables, against reading them once.

    python bench/hostvars.py [--sizes 48 192] [--repeat 3]

Per size N: an inventory of N local-connection hosts, each with a templated mtls_certs_services
(as the benchmark fleets have), and three one-play runs of ansible-playbook: a task that reads no
other host (the floor), the same task when each host lists every host's services through hostvars
(what the nginx preflight did), and the list made once for the play (run_once set_fact, what the
certificates preflight does now). Prints wall and CPU seconds (median of --repeat) as markdown.
"""

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time

LIST = "groups['all'] | map('extract', hostvars, 'mtls_certs_services') | select('defined') | flatten | map(attribute='name') | unique"
PLAYS = {
    "floor": "    - ansible.builtin.debug:\n        msg: \"{{ groups['all'] | length }}\"\n",
    "every host reads every host": f"    - ansible.builtin.debug:\n        msg: \"{{{{ {LIST} | length }}}}\"\n",
    "listed once (run_once)": (f"    - ansible.builtin.set_fact:\n        identities: \"{{{{ {LIST} }}}}\"\n      run_once: true\n"
                               "    - ansible.builtin.debug:\n        msg: \"{{ identities | length }}\"\n"),
}


def timed(inventory, playbook):
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["ansible-playbook", "-i", inventory, playbook], capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 192])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| hosts | task | wall | CPU |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        os.makedirs(os.path.join(work, "group_vars"))
        with open(os.path.join(work, "group_vars", "all.yml"), "w", encoding="utf-8") as handle:
            handle.write("mtls_certs_services:\n  - name: \"{{ bench_service }}\"\n")
        playbooks = {}
        for index, (name, tasks) in enumerate(PLAYS.items()):
            playbooks[name] = os.path.join(work, f"play-{index}.yml")
            with open(playbooks[name], "w", encoding="utf-8") as handle:
                handle.write(f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
        for size in args.sizes:
            inventory = os.path.join(work, f"hosts-{size}.yml")
            with open(inventory, "w", encoding="utf-8") as handle:
                hosts = [f"    h{i:04d}: {{bench_service: s{i % 4}, ansible_connection: local}}\n" for i in range(size)]
                handle.write("all:\n  hosts:\n" + "".join(hosts))
            for name, playbook in playbooks.items():
                runs = [timed(inventory, playbook) for attempt in range(args.repeat)]
                wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
                print(f"| {size} | {name} | {wall:.2f} s | {cpu:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
