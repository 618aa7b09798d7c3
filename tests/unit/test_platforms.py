"""What README says is tested is what the roles' metadata claims and what the lab runs."""

import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as handle:
        return handle.read()


def readme_tested():
    section = read("README.md").split("<!-- platforms:", 1)[1].split("Advice only", 1)[0]
    return set(re.findall(r"\*\*Debian \d+ \((\w+)\)\*\*", section))


def test_the_readme_names_what_is_tested():
    assert readme_tested() == {"bookworm", "trixie"}


def test_every_role_claims_exactly_what_is_tested():
    for role in sorted(os.listdir(os.path.join(ROOT, "roles"))):
        platforms = yaml.safe_load(read("roles", role, "meta", "main.yml"))["galaxy_info"]["platforms"]
        assert platforms == [{"name": "Debian", "versions": sorted(readme_tested())}], role


def test_the_lab_runs_every_release_the_readme_names():
    lab = read("scripts", "lab")
    allowed = set(re.search(r'case "\$suite" in ([\w|]+)\)', lab).group(1).split("|"))
    default = re.search(r'suite="\$\{MTLS_LAB_SUITE:-(\w+)\}"', lab).group(1)
    in_matrix = set(re.findall(r"\[[\d.]+\]=(\w+)", re.search(r"declare -A suites=\(([^)]*)\)", read("scripts", "test-matrix")).group(1)))
    assert allowed == readme_tested()
    assert {default} | in_matrix == readme_tested()
