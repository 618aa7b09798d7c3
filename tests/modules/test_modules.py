"""The modules through real ansible-playbook runs on localhost."""

import collections
import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLUGINS = [("module", name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, "plugins", "modules"))) if name.endswith(".py")]
PLUGINS += [("filter", name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, "plugins", "filter"))) if name.endswith(".py")]
Run = collections.namedtuple("Run", "rc stats output")


def ansible_playbook(name, extra, args, **settings):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", **settings)
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         os.path.join(HERE, name), "-e", json.dumps(extra), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )


def playbook(name, extra, *args):
    """Run a playbook; return its exit code, the recap's counters for localhost and all output."""
    done = ansible_playbook(name, extra, args)
    recap = re.search(r"^localhost\s+:\s+(.*)$", done.stdout, re.M)
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))} if recap else {}
    return Run(done.returncode, stats, done.stdout + done.stderr)


def failure_messages(name, extra, *args):
    """Run a playbook; return the msg of every failed task as the module wrote it. Read from the
    default callback's JSON results: YAML results are wrapped and quoted differently from one
    ansible-core release to the next (and the json callback is not in ansible-core 2.16)."""
    done = ansible_playbook(name, extra, args, ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    output = done.stdout + done.stderr
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(output, found.end())[0].get("msg", "") for found in re.finditer(r"FAILED! => ", output)]


def tree(path):
    return {os.path.join(top, f): open(os.path.join(top, f), "rb").read() for top, dirs, files in os.walk(path) for f in files}


@pytest.fixture(name="fleet")
def fixture_fleet(tmp_path):
    names = ["web", "api", "worker"]
    ca_dir = str(tmp_path / "ca")
    return {
        "ca_dir": ca_dir,
        "ca_passphrase": "correct horse",
        "results_file": str(tmp_path / "results.json"),
        "requests": [{"name": n, "subject_alt_name": [f"DNS:{n}.example.com", f"URI:spiffe://example.org/{n}"]} for n in names],
        "inspect": [{"name": n, "path": f"{ca_dir}/issued/{n}/cert.pem", "privatekey_path": f"{ca_dir}/issued/{n}/key.pem"} for n in names],
    }


def results(fleet):
    with open(fleet["results_file"]) as handle:
        return json.load(handle)


def test_check_mode_then_converge_then_idempotent_then_forced(fleet):
    run = playbook("fleet.yml", fleet, "--check")
    assert run.rc == 0 and run.stats["changed"] == 2, run.output
    plan = results(fleet)["issued"]["certificates"]
    assert {(c["status"], c["detail"]) for c in plan} == {("issued", "the CA does not exist yet (check mode)")}
    assert not os.path.exists(fleet["ca_dir"])

    run = playbook("fleet.yml", fleet)
    assert run.rc == 0 and run.stats["changed"] == 2
    first = results(fleet)
    assert [c["status"] for c in first["issued"]["certificates"]] == ["issued"] * 3
    assert all(c["key_matches"] and c["chain_verified"] and not c["renew"] for c in first["info"]["certificates"])
    assert {c["privatekey"]["mode"] for c in first["info"]["certificates"]} == {"0600"}
    before = tree(fleet["ca_dir"])

    run = playbook("fleet.yml", fleet)
    assert run.rc == 0 and run.stats["changed"] == 0
    assert tree(fleet["ca_dir"]) == before

    run = playbook("fleet.yml", fleet, "--check", "-e", "force=true")
    assert run.rc == 0 and run.stats["changed"] == 1
    assert tree(fleet["ca_dir"]) == before

    run = playbook("fleet.yml", fleet, "-e", "force=true")
    assert run.rc == 0 and run.stats["changed"] == 1
    forced = results(fleet)
    old = {c["name"]: c["serial"] for c in first["issued"]["certificates"]}
    assert all(c["status"] == "renewed" and c["reason"] == "forced" and c["serial"] != old[c["name"]]
               for c in forced["issued"]["certificates"])


def test_a_san_change_is_seen_by_info_and_renewed(fleet):
    assert playbook("fleet.yml", fleet).rc == 0
    fleet["requests"][1]["subject_alt_name"].append("DNS:api-v2.example.com")
    fleet["inspect"][1]["subject_alt_name"] = fleet["requests"][1]["subject_alt_name"]
    assert playbook("fleet.yml", fleet).rc == 0
    out = results(fleet)
    assert [(c["name"], c["reason"]) for c in out["issued"]["certificates"]] == [("web", None), ("api", "sans_changed"), ("worker", None)]
    assert out["info"]["certificates"][1]["reason"] is None  # inspected after renewal: now fits


def test_bad_input_fails_naming_certificate_and_field_and_changes_nothing(fleet):
    assert playbook("fleet.yml", fleet).rc == 0
    before = tree(fleet["ca_dir"])
    fleet["requests"][0]["subject_alt_name"] = ["DNS:bad name"]
    fleet["requests"][2]["subject_alt_name"] = ["DNS:worker.evil.org"]
    message, = failure_messages("fleet.yml", fleet, "-e", "force=true")
    assert "certificate 'web': subject_alt_name: 'DNS:bad name' is not a valid DNS name" in message
    assert tree(fleet["ca_dir"]) == before


def test_wrong_ca_passphrase_is_a_clear_error(fleet):
    assert playbook("fleet.yml", fleet).rc == 0
    fleet["ca_passphrase"] = "wrong"
    message, = failure_messages("fleet.yml", fleet)
    assert "root-ca-key.pem cannot be read with the given passphrase" in message


def test_no_key_material_in_any_result(fleet):
    run = playbook("fleet.yml", fleet, "-e", "force=true", "--diff", "-v")
    assert run.rc == 0 and "PRIVATE KEY" not in run.output


def test_csr_mode_key_stays_on_the_host(tmp_path):
    extra = {"ca_dir": str(tmp_path / "ca"), "host_dir": str(tmp_path / "host"), "results_file": str(tmp_path / "r.json")}
    assert playbook("csr.yml", extra).rc == 0
    with open(extra["results_file"]) as handle:
        out = json.load(handle)
    assert out["csr"]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert out["issued"]["certificates"][0]["key_path"] is None
    assert not os.path.exists(tmp_path / "ca" / "issued" / "web" / "key.pem")
    assert out["info"]["certificates"][0]["key_matches"] is True
    assert oct(os.stat(tmp_path / "host" / "key.pem").st_mode & 0o777) == "0o600"
    run = playbook("csr.yml", extra)
    assert run.rc == 0 and run.stats["changed"] == 0


@pytest.mark.parametrize("kind, name", PLUGINS)
def test_ansible_doc_renders(kind, name):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    done = subprocess.run(["ansible-doc", "-t", kind, f"mtls.fleet.{name}"], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert done.returncode == 0 and "EXAMPLES" in done.stdout and "RETURN VALUES" in done.stdout, done.stderr


def test_every_module_is_covered():
    assert {name for kind, name in PLUGINS if kind == "module"} >= {
        "ca", "certificates", "certificate_info", "csr", "certificate_files", "nginx_config", "tls_probe"}
