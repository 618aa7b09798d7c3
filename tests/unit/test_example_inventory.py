"""docs/examples/inventory, which the tarball ships, is the fleet the demo and the molecule scenarios
roll out (extensions/demo/inventory): the same groups, hosts and settings, but for the addresses and
the CA directory, which the lab sets."""

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "docs", "examples", "inventory")
DEMO = os.path.join(ROOT, "extensions", "demo", "inventory")
LAB_ONLY = {"mtls_ca_path"}


def load(*path):
    with open(os.path.join(*path), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_the_example_has_the_demo_s_settings():
    assert sorted(os.listdir(os.path.join(EXAMPLE, "group_vars"))) == sorted(os.listdir(os.path.join(DEMO, "group_vars")))
    for name in os.listdir(os.path.join(DEMO, "group_vars")):
        demo = {key: value for key, value in load(DEMO, "group_vars", name).items() if key not in LAB_ONLY}
        assert load(EXAMPLE, "group_vars", name) == demo, name


def test_the_example_has_the_demo_s_groups_and_hosts():
    def shape(inventory):
        listed = json.loads(subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", inventory, "--list"],
                                           capture_output=True, text=True, check=True, cwd=ROOT).stdout)
        return {group: sorted(entry.get("hosts", [])) + sorted(entry.get("children", [])) for group, entry in listed.items() if group != "_meta"}
    assert shape(os.path.join(EXAMPLE, "hosts.yml")) == shape(os.path.join(DEMO, "hosts.yml"))
