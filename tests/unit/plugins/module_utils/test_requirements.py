"""What a host needs, and the advice it gets: pure functions, and the module on real interpreters."""

import glob
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import requirements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_version_tuple_reads_release_and_prerelease_versions():
    assert requirements.version_tuple("38.0.4") == (38, 0, 4)
    assert requirements.version_tuple("3.4.8rc1") == (3, 4)
    assert requirements.version_tuple("41") == (41,)
    assert not requirements.cryptography_is_recent("3.4.8")
    assert requirements.cryptography_is_recent("38.0.0") and requirements.cryptography_is_recent("48.0.0")


def test_os_release_ids_read_id_then_id_like():
    text = 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
    assert requirements.os_release_ids(text) == ["rocky", "rhel", "centos", "fedora"]
    assert requirements.os_release_ids("") == [""]


@pytest.mark.parametrize(
    "ids, command",
    [
        (["debian"], "apt-get install python3-cryptography"),
        (["linuxmint", "ubuntu", "debian"], "apt-get install python3-cryptography"),
        (["rocky", "rhel", "centos", "fedora"], "dnf install python3-cryptography"),
        (["opensuse-leap", "suse", "opensuse"], "zypper install python3-cryptography"),
        (["alpine"], "apk add py3-cryptography"),
        (["arch"], "pacman -S python-cryptography"),
    ],
)
def test_advice_names_the_distribution_package_and_the_pip_fallback(ids, command):
    advice = requirements.cryptography_advice(ids, "/usr/bin/python3")
    assert advice.startswith(command)
    assert "/usr/bin/python3 -m pip install 'cryptography>=38.0'" in advice


def test_advice_on_an_unknown_distribution_is_pip():
    assert requirements.cryptography_advice(["plan9"], "/opt/py/bin/python") == "/opt/py/bin/python -m pip install 'cryptography>=38.0'"


def test_problems_name_interpreter_version_found_and_fix():
    assert requirements.problems((3, 11, 2), "/usr/bin/python3", "38.0.4", ["debian"]) == []
    old_python, = requirements.problems((3, 6, 15), "/usr/bin/python3.6", "38.0.4", ["debian"])
    assert "Python 3.6.15 at /usr/bin/python3.6 is older than 3.7" in old_python
    assert "ansible_python_interpreter" in old_python
    missing, = requirements.problems((3, 11, 2), "/usr/bin/python3", None, ["debian"])
    assert "cryptography is not installed for /usr/bin/python3" in missing and "apt-get install python3-cryptography" in missing
    too_old, = requirements.problems((3, 10, 12), "/usr/bin/python3", "3.4.8", ["ubuntu", "debian"])
    assert "cryptography 3.4.8 for /usr/bin/python3 is older than 38.0" in too_old
    assert len(requirements.problems((3, 6, 8), "/usr/libexec/platform-python", "2.3", ["rhel"])) == 2


def run_module(interpreter, tmp_path):
    """mtls.fleet.host_requirements through ansible-playbook, on localhost with this interpreter."""
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - mtls.fleet.host_requirements:\n      register: found\n      failed_when: false\n"
        "    - ansible.builtin.copy: {content: '{{ found | to_json }}', dest: '" + str(tmp_path / "found.json") + "'}\n"
        "      delegate_to: localhost\n      vars: {ansible_python_interpreter: '" + sys.executable + "'}\n"
    )
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + interpreter, str(play)],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((tmp_path / "found.json").read_text())


def test_module_reports_this_interpreter(tmp_path):
    found = run_module(sys.executable, tmp_path)
    assert found["python_executable"] == sys.executable and not found.get("msg"), found
    import cryptography  # pylint: disable=import-outside-toplevel

    assert found["cryptography_version"] == cryptography.__version__


def test_module_names_the_missing_library_and_its_package(tmp_path):
    bare = tmp_path / "bare"  # a real interpreter without cryptography
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    found = run_module(str(bare / "bin" / "python"), tmp_path)
    assert found["cryptography_version"] is None
    assert "cryptography is not installed for " + str(bare / "bin" / "python") in found["msg"], found
    assert "-m pip install 'cryptography>=38.0'" in found["msg"]


def old_interpreter():
    """Python 3.6 from pyenv, where this machine has it; ansible-core 2.16 still runs modules on it."""
    import ansible.release  # pylint: disable=import-outside-toplevel

    if requirements.version_tuple(ansible.release.__version__) >= (2, 17):
        pytest.skip("ansible-core %s runs no module on Python 3.6; scripts/test-matrix runs this with 2.16" % ansible.release.__version__)
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6.*/bin/python3.6")))
    if not found:
        pytest.fail("no Python 3.6 on this machine (pyenv ~/.pyenv/versions/3.6.*): the 2.16 leg needs one to test old hosts")
    return found[-1]


def test_module_on_python_36_says_so_instead_of_a_syntax_error(tmp_path):
    interpreter = old_interpreter()
    found = run_module(interpreter, tmp_path)
    assert found["python_version"].startswith("3.6."), found
    assert "Python " + found["python_version"] + " at " + interpreter + " is older than 3.7" in found["msg"], found


def test_the_installed_cryptography_is_judged_and_a_missing_one_is_not_recent(monkeypatch):
    assert requirements.installed_cryptography_is_recent()  # the test environment's own
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography now raises ImportError
    assert not requirements.installed_cryptography_is_recent()
