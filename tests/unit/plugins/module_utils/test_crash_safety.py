"""Fault injection with real processes: a writer killed with SIGKILL at a random moment, again
and again, on the host side (a service's generation) and on the CA store (bulk issuance). After
every kill, every key is with its own certificate; the next run converges and leaves nothing
behind."""

import json
import os
import random
import re
import subprocess
import sys
import time

from ansible_collections.mtls.fleet.plugins.module_utils import authority, deploy, locking, pki
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
KILLS = 25
SERVICES = [f"svc-{i}" for i in range(4)]

INSTALL_FOREVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.mtls.fleet.plugins.module_utils import deploy, pki
spec = json.load(open(sys.argv[2]))
generations = [[deploy.ServiceFiles(s["name"], s["directory"], s["cert"].encode(), s["key"].encode()) for s in gen] for gen in spec["generations"]]
print("started", flush=True)
while True:
    for services in generations:
        deploy.install(services, spec["bundle"].encode(), pki.utcnow())
"""

ISSUE_FOREVER = """
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.mtls.fleet.plugins.module_utils import authority, locking, pki
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys
ca, names = sys.argv[2], sys.argv[3].split(",")
requests = authority.parse_requests([{"name": n, "subject_alt_name": ["DNS:" + n]} for n in names], {})
issuer = authority.load_issuer(ca, CAKeys())
print("started", flush=True)
while True:
    with locking.ca_lock(ca, "mtls.fleet.certificates", 5):
        authority.issue(ca + "/issued", requests, issuer, pki.Policy(), pki.utcnow(), force=True)
"""


def start(code, *args):
    child = subprocess.Popen([sys.executable, "-c", code, COLLECTIONS, *args], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    return child


def kill_at_a_random_moment(child, rng):
    time.sleep(rng.uniform(0.005, 0.15))
    child.kill()
    child.wait()
    child.stdout.close()


def assert_pair_matches(directory):
    cert = pki.load_certificates(open(os.path.join(directory, "cert.pem"), "rb").read(), directory)[0]
    key = pki.load_private_key(open(os.path.join(directory, "key.pem"), "rb").read(), directory)
    assert pki.key_mismatch(cert, key) is None, directory


def test_a_host_install_killed_at_any_moment_serves_a_matching_pair_and_converges(tmp_path):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}"]} for n in SERVICES], {})
    issuer, hosts = authority.load_issuer(ca, CAKeys()), tmp_path / "etc-mtls"
    generations = []
    for force in (False, True, True):
        outcomes = authority.issue(os.path.join(ca, "issued"), requests, issuer, pki.Policy(), pki.utcnow(), force=force)
        generations.append([{"name": o.name, "directory": str(hosts / o.name), "cert": o.cert_pem.decode(),
                             "key": open(o.key_path, encoding="ascii").read()} for o in outcomes])
    bundle = open(os.path.join(ca, "ca-bundle.pem"), encoding="ascii").read()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"generations": generations, "bundle": bundle}))
    rng = random.Random(20261202)
    for _kill in range(KILLS):
        kill_at_a_random_moment(start(INSTALL_FOREVER, str(spec)), rng)
        for name in SERVICES:
            if os.path.lexists(hosts / name):
                assert_pair_matches(str(hosts / name))
    last = [deploy.ServiceFiles(s["name"], s["directory"], s["cert"].encode(), s["key"].encode()) for s in generations[0]]
    deploy.install(last, bundle.encode(), pki.utcnow())
    assert not any(r["changed"] for r in deploy.install(last, bundle.encode(), pki.utcnow()))
    for name in SERVICES:
        assert_pair_matches(str(hosts / name))
        assert open(hosts / name / "cert.pem", encoding="ascii").read() == generations[0][SERVICES.index(name)]["cert"]
    # Nothing but each service's link, its generations (the one served and at most the one before
    # it, each a matching pair) and the link naming the previous one; and the host's lock file.
    names = os.listdir(hosts)
    assert {re.sub(r"\.(gen\d+|previous)$", "", n).lstrip(".") for n in names} == {"lock", *SERVICES}
    for name in SERVICES:
        generations = [n for n in names if re.fullmatch(rf"\.{name}\.gen\d+", n)]
        assert 1 <= len(generations) <= 2 and os.readlink(hosts / name) in generations
        for generation in generations:
            assert_pair_matches(str(hosts / generation))
        if os.path.lexists(hosts / f".{name}.previous"):
            assert os.readlink(hosts / f".{name}.previous") in generations


def test_bulk_issuance_killed_at_any_moment_converges_with_every_key_matching(tmp_path):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    names = [f"svc-{i}" for i in range(40)]
    rng = random.Random(20261203)
    for _kill in range(KILLS):
        kill_at_a_random_moment(start(ISSUE_FOREVER, ca, ",".join(names)), rng)
        for name in names:  # every certificate the store has is with its own key, at every kill
            if os.path.lexists(os.path.join(ca, "issued", name)):
                assert_pair_matches(os.path.join(ca, "issued", name))
    requests = authority.parse_requests([{"name": n, "subject_alt_name": [f"DNS:{n}"]} for n in names], {})
    with locking.ca_lock(ca, "mtls.fleet.certificates", 5):
        authority.issue(os.path.join(ca, "issued"), requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow())
    again = authority.issue(os.path.join(ca, "issued"), requests, authority.load_issuer(ca, CAKeys()), pki.Policy(), pki.utcnow())
    assert {o.status for o in again} == {"unchanged"}
    for name in names:
        assert_pair_matches(os.path.join(ca, "issued", name))
    leftovers = [os.path.join(d, f) for d, _dirs, fs in os.walk(ca) for f in fs if f.endswith(".tmp")]
    assert leftovers == []


def module_process(name, args, tmp_path):
    """The module's own main() in its own process, as Ansible runs it."""
    args_file = tmp_path / f"args-{os.urandom(4).hex()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "plugins", "modules", f"{name}.py"), str(args_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=COLLECTIONS))


def kill_modules_mid_run(name, runs, tmp_path, check, rng):
    """Time one whole run, then kill runs at random moments across their second half (where the
    module writes, after its imports and checks), checking after every kill. runs: the args of
    successive runs, cycled, each one a change. Returns the result of a last, whole run."""
    start_time = time.monotonic()
    module_process(name, runs[0], tmp_path).communicate()
    duration = time.monotonic() - start_time
    for kill in range(KILLS):
        process = module_process(name, runs[(kill + 1) % len(runs)], tmp_path)
        time.sleep(rng.uniform(0.4 * duration, 1.1 * duration))
        process.kill()
        process.communicate()
        check()
    out, _err = module_process(name, runs[0], tmp_path).communicate()
    return json.loads(out)


def test_the_modules_killed_mid_run_leave_matching_pairs_on_the_store_and_the_host(tmp_path):
    ca = str(tmp_path / "ca")
    authority.ensure_ca(ca, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    names = [f"svc-{i}" for i in range(40)]
    rng = random.Random(20261204)
    forced = {"ca_path": ca, "return_content": True,
              "certificates": [{"name": n, "subject_alt_name": [f"DNS:{n}"], "force": True} for n in names]}

    def store_pairs_match():
        for name in names:
            if os.path.lexists(os.path.join(ca, "issued", name)):
                assert_pair_matches(os.path.join(ca, "issued", name))

    result = kill_modules_mid_run("certificates", [forced], tmp_path, store_pairs_match, rng)
    assert not result.get("failed") and {c["status"] for c in result["certificates"]} == {"renewed"}
    store_pairs_match()

    hosts, bundle = tmp_path / "etc-mtls", open(os.path.join(ca, "ca-bundle.pem"), encoding="ascii").read()

    def generation(link):
        return [{"name": n, "path": str(hosts / n), "certificate": open(os.path.join(ca, "issued", link % n, "cert.pem"), encoding="ascii").read(),
                 "private_key": open(os.path.join(ca, "issued", link % n, "key.pem"), encoding="ascii").read()} for n in names[:4]]

    def host_pairs_match():
        for name in names[:4]:
            if os.path.lexists(hosts / name):
                assert_pair_matches(str(hosts / name))

    current, previous = ({"services": generation(link), "ca_bundle": bundle} for link in ("%s", ".%s.previous"))
    outcome = kill_modules_mid_run("certificate_files", [current, previous], tmp_path, host_pairs_match, rng)
    assert not outcome.get("failed"), outcome.get("msg")
    out, _err = module_process("certificate_files", current, tmp_path).communicate()
    assert json.loads(out)["changed"] is False
    host_pairs_match()
