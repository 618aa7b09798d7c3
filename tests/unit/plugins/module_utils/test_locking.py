"""One writer at a time on a CA directory, shown with real processes: the modules themselves run
concurrently against one CA (as 20 operators, or a revocation during a scheduled rotation, would),
and every change is kept. Without the lock, 20 concurrent revocations kept 19 (field notes)."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import authority, locking, pki, revocation, rollover
from ansible_collections.mtls.fleet.plugins.module_utils.custody import CAKeys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")


@pytest.fixture(name="ca")
def fixture_ca(tmp_path):
    path = str(tmp_path / "ca")
    authority.ensure_ca(path, authority.CASpec(intermediate=True), CAKeys(), pki.utcnow())
    return path


def run_module(name, args, tmp_path):
    """The module's own main(), in its own process, as Ansible runs it (args file, JSON on stdout)."""
    args_file = tmp_path / f"args-{os.urandom(4).hex()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", f"{name}.py"), str(args_file)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    return json.loads(done.stdout)


def issue_many(ca, names, tmp_path):
    requests = [{"name": name, "subject_alt_name": [f"DNS:{name}.example.org"]} for name in names]
    return run_module("certificates", {"ca_path": ca, "certificates": requests}, tmp_path)


def test_twenty_concurrent_revocations_are_all_recorded_and_in_the_crl(ca, tmp_path):
    names = [f"svc-{i}" for i in range(20)]
    issue_many(ca, names, tmp_path)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda name: run_module("crl", {"ca_path": ca, "revoke": [{"name": name}]}, tmp_path), names))
    assert [r.get("failed", False) for r in results] == [False] * 20, [r.get("msg") for r in results]
    recorded = {entry["name"] for entry in revocation.read_revocations(ca)}
    assert recorded == set(names)
    crl_serials = set().union(*(pki.crl_serials(crl) for crl in pki.load_crls(open(os.path.join(ca, "crl.pem"), "rb").read(), "crl")))
    issued = {pki.load_certificates(open(os.path.join(ca, "issued", n, "cert.pem"), "rb").read(), n)[0].serial_number for n in names}
    assert issued <= crl_serials


def test_concurrent_issuance_revocation_and_a_rollover_phase_keep_every_change(ca, tmp_path):
    first = [f"old-{i}" for i in range(8)]
    issue_many(ca, first, tmp_path)
    jobs = [("crl", {"ca_path": ca, "revoke": [{"name": name}]}) for name in first]
    jobs += [("certificates", {"ca_path": ca, "certificates": [{"name": f"new-{i}", "subject_alt_name": [f"DNS:new-{i}.example.org"]}]})
             for i in range(8)]
    jobs.insert(8, ("ca_rollover", {"path": ca, "intermediate": True, "kind": "root", "phase": "trust"}))
    with ThreadPoolExecutor(max_workers=17) as pool:
        results = list(pool.map(lambda job: run_module(*job, tmp_path), jobs))
    assert not any(r.get("failed") for r in results), [r.get("msg") for r in results]
    assert {entry["name"] for entry in revocation.read_revocations(ca)} == set(first)
    state = rollover.read_state(ca)
    assert state.kind == "root" and state.in_progress and os.path.exists(os.path.join(ca, authority.NEXT, authority.ROOT_CERT))
    issuer = authority.load_issuer(ca, CAKeys())
    for i in range(8):
        chain = pki.load_certificates(open(os.path.join(ca, "issued", f"new-{i}", "cert.pem"), "rb").read(), "cert")
        key = pki.load_private_key(open(os.path.join(ca, "issued", f"new-{i}", "key.pem"), "rb").read(), "key")
        assert pki.key_mismatch(chain[0], key) is None and pki.signed_by(chain[0], issuer.cert)


def hold_lock(ca, seconds):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from ansible_collections.mtls.fleet.plugins.module_utils import locking;"
            "cm = locking.ca_lock(sys.argv[2], 'mtls.fleet.crl (test holder)', 5); cm.__enter__();"
            "print('held', flush=True); time.sleep(float(sys.argv[3]))")
    holder = subprocess.Popen([sys.executable, "-c", code, COLLECTIONS, ca, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_that_cannot_get_the_lock_in_time_names_the_holder_and_changes_nothing(ca, tmp_path):
    issue_many(ca, ["web"], tmp_path)
    holder = hold_lock(ca, 30)
    try:
        result = run_module("crl", {"ca_path": ca, "revoke": [{"name": "web"}], "lock_timeout": 0.5}, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result["failed"]
    assert "the CA directory is busy: mtls.fleet.crl (test holder) (pid" in result["msg"] and "waited 0.5 s" in result["msg"]
    assert revocation.read_revocations(ca) == []


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(ca, tmp_path):
    holder = hold_lock(ca, 300)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    with locking.ca_lock(ca, "test", timeout=1):
        pass
    assert time.monotonic() - start < 1


def test_check_mode_readers_share_the_lock_but_wait_for_a_writer(ca):
    with locking.ca_lock(ca, "an earlier writer", timeout=0.2):
        pass  # check mode never creates the lock file; a writer did
    with locking.ca_lock(ca, "reader 1", timeout=0.2, exclusive=False):
        with locking.ca_lock(ca, "reader 2", timeout=0.2, exclusive=False):
            pass
        with pytest.raises(locking.LockTimeout, match="the CA directory is busy"):
            with locking.ca_lock(ca, "writer", timeout=0.2):
                pass


def test_a_directory_that_does_not_exist_needs_no_lock(tmp_path):
    with locking.ca_lock(str(tmp_path / "nothing"), "test", timeout=0):
        pass
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("module, args", [
    ("certificates", {"certificates": [{"name": "web", "subject_alt_name": ["DNS:web"]}]}),
    ("crl", {"revoke": [{"name": "web"}]}),
])
def test_a_ca_directory_others_can_write_to_is_refused_before_any_change(ca, tmp_path, module, args):
    os.chmod(ca, 0o777)
    before = sorted(os.listdir(ca))
    result = run_module(module, {"ca_path": ca, **args}, tmp_path)
    assert result["failed"] and f"{ca} is writable by group and others (mode 0777)" in result["msg"]
    assert "chmod go-w" in result["msg"] and sorted(os.listdir(ca)) == before
