"""The modules through real ansible-playbook runs on localhost."""

import ast
import collections
import json
import os
import pwd
import re
import stat
import subprocess
import sys

import pytest
from cryptography import x509

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLUGINS = [("module", name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, "plugins", "modules"))) if name.endswith(".py")]
PLUGINS += [("filter", name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, "plugins", "filter"))) if name.endswith(".py")]
PLUGINS += [("test", name[:-3]) for name in sorted(os.listdir(os.path.join(ROOT, "plugins", "test"))) if name.endswith(".py")]
Run = collections.namedtuple("Run", "rc stats output")


def ansible_playbook(name, extra, args, **settings):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", **settings)
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         os.path.join(HERE, name), "-e", json.dumps(extra), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )


def playbook(name, extra, *args, **settings):
    """Run a playbook; return its exit code, the recap's counters for localhost and all output."""
    done = ansible_playbook(name, extra, args, **settings)
    recap = re.search(r"^localhost\s+:\s+(.*)$", done.stdout, re.M)
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))} if recap else {}
    return Run(done.returncode, stats, done.stdout + done.stderr)


def failure_messages(name, extra, *args, **settings):
    """Run a playbook; return the msg of every failed task as the module wrote it. Read from the
    default callback's JSON results: YAML results are wrapped and quoted differently from one
    ansible-core release to the next (and the json callback is not in ansible-core 2.16)."""
    done = ansible_playbook(name, extra, args, ANSIBLE_CALLBACK_RESULT_FORMAT="json", **settings)
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


def module_result(module, args, tmp_path, check=True):
    """What a module itself returns for args, started as a host starts it (no action plugin)."""
    args_file = tmp_path / f"{module}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", f"{module}.py"), str(args_file)],
                          capture_output=True, text=True, check=check, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".build", "collections")))
    return json.loads(done.stdout)


def test_an_idempotent_pass_on_the_controller_starts_no_module_and_says_what_the_module_says(fleet, tmp_path):
    assert playbook("fleet.yml", fleet).rc == 0
    run = playbook("fleet.yml", fleet, "-vvv")
    assert run.rc == 0 and run.stats["changed"] == 0
    assert "AnsiballZ_ca.py" in run.output and "AnsiballZ_certificates.py" not in run.output
    answered = results(fleet)["issued"]
    module = module_result("certificates", {"ca_path": fleet["ca_dir"], "certificates": fleet["requests"]}, tmp_path)
    assert not module["changed"] and module["summary"] == {"issued": 0, "renewed": 0, "unchanged": 3}
    assert {k: answered[k] for k in module if k != "invocation"} == {k: v for k, v in module.items() if k != "invocation"}

    run = playbook("fleet.yml", fleet, "-vvv", "-e", "force=true")  # something due: the module signs
    assert run.rc == 0 and "AnsiballZ_certificates.py" in run.output
    assert results(fleet)["issued"]["summary"]["renewed"] == 3


def test_inspection_reads_the_files_with_one_shell_command_and_says_what_the_module_says(fleet, tmp_path):
    assert playbook("fleet.yml", fleet).rc == 0
    run = playbook("fleet.yml", fleet, "-vvv")
    assert run.rc == 0 and "AnsiballZ_certificate_info.py" not in run.output and "/bin/sh -s mtls.fleet.certificate_info" in run.output
    answered = results(fleet)
    module = module_result("certificate_info", {"ca_bundle_path": answered["ca"]["bundle_path"], "certificates": fleet["inspect"]}, tmp_path)

    def comparable(result):  # judged a few seconds apart
        return [{k: v for k, v in c.items() if k != "days_left"} for c in result["certificates"]]
    assert comparable(answered["info"]) == comparable(module) and len(module["certificates"]) == 3

    (tmp_path / "not-a-key").mkdir()  # what the shell's reading cannot settle goes to the module
    fleet["inspect"].append({"name": "odd", "path": fleet["inspect"][0]["path"], "privatekey_path": str(tmp_path / "not-a-key")})
    run = playbook("fleet.yml", fleet, "-vvv")
    assert run.rc == 0 and "AnsiballZ_certificate_info.py" in run.output
    odd = results(fleet)["info"]["certificates"][-1]
    assert odd["renew"] and odd["reason"] == "key_mismatch" and odd["detail"].endswith("not-a-key: Is a directory"), odd


def test_an_empty_ca_path_is_bad_input_and_never_a_place_for_a_new_ca(fleet, tmp_path):
    fleet["ca_dir"] = ""  # as from an unset environment lookup
    message, = failure_messages("fleet.yml", fleet)
    assert message.startswith("the CA directory's path is empty; set mtls_ca_path"), message
    issued = module_result("certificates", {"ca_path": "", "certificates": fleet["requests"]}, tmp_path, check=False)
    assert issued["failed"] and issued["msg"] == message


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


def test_csr_force_makes_a_new_key_and_says_so(tmp_path):
    args = {"path": str(tmp_path / "key.pem"), "common_name": "web"}
    first = module_result("csr", args, tmp_path)
    assert first["changed"] and first["reason"] == "missing"
    before = (tmp_path / "key.pem").read_bytes()
    kept = module_result("csr", args, tmp_path)
    assert not kept["changed"] and kept["reason"] is None and (tmp_path / "key.pem").read_bytes() == before
    forced = module_result("csr", dict(args, force=True), tmp_path)
    assert forced["changed"] and forced["reason"] == "forced" and forced["csr"] != first["csr"]
    assert (tmp_path / "key.pem").read_bytes() != before and (tmp_path / "key.pem.previous").read_bytes() == before

    args = {"path": str(tmp_path / "key.pem"), "next_path": str(tmp_path / "next.pem"), "common_name": "web"}
    made = module_result("csr", args, tmp_path)
    assert made["changed"] and made["reason"] == "missing"
    in_use, next_key = (tmp_path / "key.pem").read_bytes(), (tmp_path / "next.pem").read_bytes()
    forced = module_result("csr", dict(args, force=True), tmp_path)
    assert forced["changed"] and forced["reason"] == "forced"
    assert (tmp_path / "next.pem").read_bytes() != next_key and (tmp_path / "key.pem").read_bytes() == in_use  # the key in use is only read


def test_rotation_record_writes_under_the_ca_lock_and_reads_back(tmp_path):
    ca = tmp_path / "ca"
    ca.mkdir(mode=0o700)
    empty = module_result("rotation_record", {"path": str(ca)}, tmp_path)
    assert not empty["changed"] and empty["hosts"] == {}
    written = module_result("rotation_record", {"path": str(ca), "outcomes": {"web-1": "rotated", "web-2": "rolled back"}}, tmp_path)
    assert written["changed"] and written["hosts"]["web-2"]["last_success"] is None
    read = module_result("rotation_record", {"path": str(ca)}, tmp_path)
    assert not read["changed"] and read["hosts"] == written["hosts"] and read["hosts"]["web-1"]["last_success_timestamp"] > 0
    assert (ca / ".lock").exists()


def test_ca_backup_checks_the_ca_path_as_every_ca_module_does(tmp_path):
    args = {"archive": str(tmp_path / "ca.enc"), "passphrase": "correct horse battery staple"}
    for state in ("backup", "restore"):
        empty = module_result("ca_backup", dict(args, path="", state=state), tmp_path, check=False)
        assert empty.get("failed") and "the CA directory's path is empty; set mtls_ca_path" in empty["msg"], empty
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    found = module_result("ca_backup", dict(args, path=str(loose)), tmp_path, check=False)
    assert found.get("failed") and "is writable by group and others (mode 0777)" in found["msg"], found


def served_public_key(host_dir):
    done = subprocess.run(["openssl", "pkey", "-pubout", "-in", os.path.join(host_dir, "web", "key.pem")],
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_keys_made_on_the_host_are_new_at_every_renewal_and_roll_back_with_their_certificate(tmp_path):
    extra = {"ca_dir": str(tmp_path / "ca"), "host_dir": str(tmp_path / "host"), "results_file": str(tmp_path / "r.json")}
    os.makedirs(extra["host_dir"], mode=0o755)
    first = playbook("hostkeys.yml", extra)
    assert first.rc == 0 and first.stats["changed"] == 4, first.output
    assert playbook("hostkeys.yml", extra).stats["changed"] == 0  # idempotent: the fresh next key was made by the install
    keys = [served_public_key(extra["host_dir"])]
    for _renewal in range(2):
        run = playbook("hostkeys.yml", extra, "-e", "force=true", "-v")
        assert run.rc == 0 and "PRIVATE KEY" not in run.output, run.output
        keys.append(served_public_key(extra["host_dir"]))
    assert len(set(keys)) == 3, "two forced renewals give three different keys"
    with open(extra["results_file"]) as handle:
        out = json.load(handle)
    assert out["info"]["certificates"][0]["key_matches"] and out["issued"]["certificates"][0]["key_path"] is None
    assert not [f for top, _dirs, names in os.walk(extra["ca_dir"]) for f in names if f == "key.pem"]  # never on the CA host
    assert oct(os.stat(os.path.join(extra["host_dir"], ".web.next-key.pem")).st_mode & 0o777) == "0o600"

    rolled = playbook("hostkeys.yml", extra, "-e", "rollback=true")
    assert rolled.rc == 0, rolled.output
    assert served_public_key(extra["host_dir"]) == keys[1]  # the old pair is served again
    with open(extra["results_file"]) as handle:
        assert json.load(handle)["info"]["certificates"][0]["key_matches"]


SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(name="token_fleet")
def fixture_token_fleet(tmp_path):
    """A SoftHSM2 token of its own (SOFTHSM2_CONF reaches the modules: the connection is local)."""
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = "pin-" + os.urandom(6).hex()
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "fleet-ca", "--pin", pin, "--so-pin", "so-" + pin],
                   check=True, capture_output=True, env=dict(os.environ, SOFTHSM2_CONF=str(conf)))
    names = ["web", "api"]
    return {
        "ca_dir": str(tmp_path / "ca"),
        "pkcs11": {"module": SOFTHSM, "token_label": "fleet-ca", "pin": pin},
        "results_file": str(tmp_path / "results.json"),
        "requests": [{"name": n, "subject_alt_name": [f"DNS:{n}.example.com"]} for n in names],
        "env": {"SOFTHSM2_CONF": str(conf)},
    }


def token_objects(token_fleet, kind):
    """The labels of the token's objects of kind (privkey, pubkey), read by OpenSC's pkcs11-tool."""
    listed = subprocess.run(
        ["pkcs11-tool", "--module", SOFTHSM, "--token-label", "fleet-ca", "--login", "--pin", token_fleet["pkcs11"]["pin"],
         "--list-objects", "--type", kind], capture_output=True, text=True, check=True, env=dict(os.environ, **token_fleet["env"]))
    return sorted(re.findall(r"label:\s+(.+)", listed.stdout))


def test_token_ca_signs_everything_in_the_token_and_never_shows_the_pin(token_fleet):
    extra, env = {k: v for k, v in token_fleet.items() if k != "env"}, token_fleet["env"]
    run = playbook("token.yml", dict(extra, revoke=[{"name": "web", "reason": "key_compromise"}]), "-vvv", **env)
    assert run.rc == 0 and run.stats["changed"] == 3, run.output
    assert extra["pkcs11"]["pin"] not in run.output and "PRIVATE KEY" not in run.output
    ca = extra["ca_dir"]
    for name in ("root-ca-key.pem", "intermediate-ca-key.pem"):
        assert open(os.path.join(ca, name)).read().startswith("pkcs11:token=fleet-ca;")
    assert token_objects(token_fleet, "privkey") == ["mtls-fleet mtls.fleet intermediate CA", "mtls-fleet mtls.fleet root CA"]
    chain = ["-CAfile", f"{ca}/root-ca.pem", "-untrusted", f"{ca}/intermediate-ca.pem", "-crl_check_all", "-CRLfile", f"{ca}/crl.pem"]
    verified = subprocess.run(["openssl", "verify", *chain, f"{ca}/issued/api/cert.pem"], capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    revoked = subprocess.run(["openssl", "verify", *chain, f"{ca}/issued/web/cert.pem"], capture_output=True, text=True, check=False)
    assert "certificate revoked" in revoked.stdout + revoked.stderr

    again = playbook("token.yml", extra, "-vvv", **env)
    assert again.rc == 0 and again.stats["changed"] == 0, again.output
    assert "AnsiballZ_certificates.py" not in again.output  # nothing due: judged without the token

    rolled = playbook("token.yml", extra, "-e", "rollover=true", **env)
    assert rolled.rc == 0, rolled.output
    assert "G2" in open(os.path.join(ca, "intermediate-ca-key.pem")).read()
    assert token_objects(token_fleet, "privkey") == ["mtls-fleet mtls.fleet intermediate CA G2", "mtls-fleet mtls.fleet root CA"]


def test_token_errors_are_clear(token_fleet):
    extra, env = {k: v for k, v in token_fleet.items() if k != "env"}, token_fleet["env"]
    assert playbook("token.yml", extra, **env).rc == 0
    wrong = dict(extra, pkcs11=dict(extra["pkcs11"], pin="not-the-pin"))
    message, = failure_messages("token.yml", wrong, **env)
    assert "pkcs11.pin: the PIN for token 'fleet-ca' is wrong" in message
    missing = dict(extra, pkcs11=dict(extra["pkcs11"], token_label="other"))
    message, = failure_messages("token.yml", missing, **env)
    assert "has no token labelled 'other' (tokens there: 'fleet-ca'" in message
    message, = failure_messages("fleet.yml", {"ca_dir": extra["ca_dir"], "ca_passphrase": "", "requests": extra["requests"],
                                              "inspect": [], "results_file": extra["results_file"]}, **env)
    assert "names a key in a PKCS#11 token" in message and "mtls_ca_pkcs11" in message


@pytest.mark.parametrize("kind, name", PLUGINS)
def test_ansible_doc_renders(kind, name):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    done = subprocess.run(["ansible-doc", "-t", kind, f"mtls.fleet.{name}"], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert done.returncode == 0 and "EXAMPLES" in done.stdout and "RETURN VALUES" in done.stdout, done.stderr


def test_module_attributes_say_what_each_module_does():
    """Check and diff mode and the cryptography requirement, as ansible-doc renders them, against the code."""
    modules = sorted(name for kind, name in PLUGINS if kind == "module")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    done = subprocess.run(["ansible-doc", "-t", "module", "--json", *[f"mtls.fleet.{name}" for name in modules]],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    docs = {name.split(".")[-1]: entry["doc"] for name, entry in json.loads(done.stdout).items()}
    diff_modules = set()
    for name in modules:
        source = open(os.path.join(ROOT, "plugins", "modules", f"{name}.py"), encoding="utf-8").read()
        doc, attributes = docs[name], docs[name]["attributes"]
        fragments = re.search(r"^extends_documentation_fragment:\n((?:  - .*\n)+)", source, re.M).group(1).split()[1::2]
        variants = [f for f in fragments if f.startswith("mtls.fleet.attributes.") and not f.endswith(".cryptography")]
        assert "mtls.fleet.attributes" in fragments and len(variants) == 1, name
        assert "platform:" not in source and not re.search(r"^  check_mode:\n    support:", source, re.M), f"{name}: attributes copied instead of the fragment"
        acts = os.path.exists(os.path.join(ROOT, "plugins", "action", f"{name}.py"))
        assert attributes["check_mode"]["support"] == "full" and ("supports_check_mode=True" in source or acts), name
        assert (attributes["diff_mode"]["support"] in ("full", "partial")) == ("module._diff" in source), f"{name}: diff_mode says {attributes['diff_mode']}"
        if "module._diff" in source:
            diff_modules.add(name)
        assert ("cryptography >= 38.0" in (doc.get("requirements") or [])) == needs_cryptography(source), f"{name}: requirements {doc.get('requirements')}"
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    claim = re.search(r"^Every module supports check mode\. In diff mode (.*?) show", readme, re.M | re.S)
    assert claim and set(re.findall(r"`(\w+)`", claim.group(1))) == diff_modules


def needs_cryptography(source, seen=None):
    """Whether a module, or a module_utils it imports (at any depth), imports cryptography. An
    import tried for an ImportError (the requirements check's) only looks for it."""
    seen = set() if seen is None else seen
    names = set()
    for node in untried(ast.parse(source)):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "cryptography" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "cryptography":
                return True
            if node.module.endswith("plugins.module_utils"):
                names |= {alias.name for alias in node.names}
            elif ".plugins.module_utils." in node.module:
                names.add(node.module.rsplit(".", 1)[1])
    for name in sorted(names - seen - {"requirements"}):
        seen.add(name)
        if needs_cryptography(open(os.path.join(ROOT, "plugins", "module_utils", f"{name}.py"), encoding="utf-8").read(), seen):
            return True
    return False


def untried(node):
    """Every node of a tree but those inside a try body."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.Try):
            yield from untried(child)


def test_crl_diff_names_what_was_revoked(fleet):
    run = playbook("crl.yml", fleet, "--diff")
    assert run.rc == 0, run.output
    serial = re.search(r"^\+revoked web ([0-9A-F]+) \(key_compromise\)$", run.output, re.M)
    assert serial and re.search(r"^\+CRLs re-signed: ", run.output, re.M), run.output
    assert serial.group(1) == open_serial(os.path.join(fleet["ca_dir"], "issued", "web", "cert.pem"))
    again = playbook("crl.yml", fleet, "--diff", "--check")
    assert again.rc == 0 and again.stats["changed"] == 0 and "+revoked" not in again.output, again.output
    assert "PRIVATE KEY" not in run.output + again.output


def open_serial(path):
    with open(path, "rb") as handle:
        return format(x509.load_pem_x509_certificate(handle.read()).serial_number, "X")


def test_every_module_is_covered():
    assert {name for kind, name in PLUGINS if kind == "module"} >= {
        "ca", "certificates", "certificate_info", "csr", "certificate_files", "nginx_config", "tls_probe"}


@pytest.fixture(name="role")
def fixture_role(tmp_path):
    """A role, demo, whose spec wants demo_port, an int."""
    (tmp_path / "demo" / "meta").mkdir(parents=True)
    (tmp_path / "demo" / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: demo\n    options:\n"
        "      demo_port:\n        type: int\n        required: true\n        description: a port\n")
    return {"role_dir": str(tmp_path / "demo"), "results_file": str(tmp_path / "results.json")}


def test_preflight_reports_the_spec_the_controller_and_the_host_at_once(role):
    extra = dict(role, port="eighty", demo_prot=8080, demo_result="set by the role itself", problems=["host localhost: mtls_demo is wrong; fix it"],
                 host_has=[{"executable": "/nonexistent/nginx", "missing": "nginx is not installed; install it"},
                           {"user": "no-such-user-mtls", "missing": "user no-such-user-mtls is missing; create it"},
                           {"group": "root", "missing": "unused"},
                           {"unit": "mtls-ghost.service", "missing": "mtls-ghost.service is not a unit; install it"},
                           {"unit_reload": "mtls-ghost.service", "missing": "unused: its unit is missing"}])
    messages = failure_messages("preflight.yml", extra)
    assert len(messages) == 1, messages
    spec, *others = messages[0].split("; ")
    # The validator's wording differs between ansible-core releases ("type str", "type <class 'str'>").
    assert spec.startswith("host localhost: argument 'demo_port' is of type") and "cannot be converted to an int" in spec, spec
    assert others == ["host localhost: unknown variable demo_prot", "did you mean demo_port?",
                      "host localhost: mtls_demo is wrong", "fix it", "host localhost: nginx is not installed", "install it",
                      "host localhost: user no-such-user-mtls is missing", "create it",
                      "host localhost: mtls-ghost.service is not a unit", "install it"], others
    assert not os.path.exists(role["results_file"])


def test_preflight_passes_a_good_host(role):
    host_has = [{"executable": sys.executable, "missing": "unused"}, {"user": "root", "missing": "unused"}, {"group": "0", "missing": "unused"}]
    extra = dict(role, port="8443", problems=[], host_has=host_has)
    run = playbook("preflight.yml", extra)
    assert run.rc == 0 and run.stats["changed"] == 1, run.output  # the copy of the result
    with open(role["results_file"]) as handle:
        checked = json.load(handle)
    assert checked["problems"] == [] and checked["host_reached"] and not checked["changed"]


@pytest.fixture(name="app")
def fixture_app(tmp_path):
    """Paths for an app owned by someone else than the user running (when that is root)."""
    owner, group = ("nobody", "nogroup") if os.geteuid() == 0 else (str(os.geteuid()), str(os.getegid()))
    return {"app_dir": str(tmp_path / "opt" / "app"), "source_dir": str(tmp_path / "mtls"), "service": "api", "owner": owner, "group": group}


def test_app_files_check_then_converge_then_idempotent_then_relinked(app):
    certs = os.path.join(app["app_dir"], "certs")
    run = playbook("app_files.yml", app, "--check", "--diff")
    assert run.rc == 0 and run.stats["changed"] == 1 and "-> " + app["source_dir"] + "/api/cert.pem" in run.output, run.output
    assert not os.path.exists(app["app_dir"])  # check mode changed nothing

    run = playbook("app_files.yml", app)
    assert run.rc == 0 and run.stats["changed"] == 1, run.output
    st = os.lstat(certs)
    owner_uid = pwd.getpwnam(app["owner"]).pw_uid if not app["owner"].isdigit() else int(app["owner"])
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o750, owner_uid)
    assert os.readlink(os.path.join(certs, "server-key.pem")) == app["source_dir"] + "/api/key.pem"
    assert os.lstat(os.path.join(certs, "server-key.pem")).st_uid == owner_uid
    env = os.stat(os.path.join(app["app_dir"], "env"))
    assert (stat.S_IMODE(env.st_mode), env.st_uid) == (0o640, 0 if os.geteuid() == 0 else env.st_uid)

    assert playbook("app_files.yml", app).stats["changed"] == 0

    run = playbook("app_files.yml", dict(app, service="web"), "--diff")
    assert run.rc == 0 and run.stats["changed"] == 1, run.output
    assert os.readlink(os.path.join(certs, "server-cert.pem")) == app["source_dir"] + "/web/cert.pem"
    assert [name for name in os.listdir(certs) if name.endswith(".tmp")] == []


def test_app_files_never_replace_a_file_with_a_link(app):
    assert playbook("app_files.yml", app).rc == 0
    key = os.path.join(app["app_dir"], "certs", "server-key.pem")
    os.unlink(key)
    with open(key, "w") as handle:
        handle.write("the app's own file\n")
    message, = failure_messages("app_files.yml", app)
    assert message == f"{key} exists and is not a link; move it away (mtls_app links the app's file names to the certificate " \
                      "generation mtls_certs keeps current)", message
    with open(key) as handle:
        assert handle.read() == "the app's own file\n"


def test_app_files_name_a_missing_owner(app):
    message, = failure_messages("app_files.yml", dict(app, owner="no-such-user-mtls"))
    assert message == "owner: 'no-such-user-mtls' does not exist on this host; create the user, or name another", message
    assert not os.path.exists(app["app_dir"])
