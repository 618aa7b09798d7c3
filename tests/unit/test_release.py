"""What users read about versions agrees with the version they install: galaxy.yml's."""

import glob
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


VERSION = yaml.safe_load(read("galaxy.yml"))["version"]
PAGES = ["README.md", "SECURITY.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
PAGES += sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "roles", "*", "README.md")))


def key(version):
    return tuple(int(part) for part in version.split("."))


def satisfies(version, spec):
    """Whether version meets a requirements.yml version spec such as '>=0.4.0,<0.5.0' (ansible-galaxy's grammar)."""
    compare = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
               "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
    for part in spec.split(","):
        operator, wanted = re.fullmatch(r"\s*(==|!=|>=|<=|>|<)?\s*([\d.]+)\s*", part).groups()
        if not compare[operator or "=="](key(version), key(wanted)):
            return False
    return True


def test_satisfies_reads_the_grammar_ansible_galaxy_uses():
    assert satisfies("0.4.0", ">=0.4.0,<0.5.0") and satisfies("0.4.0", "0.4.0") and satisfies("0.4.1", "!=0.4.0")
    assert not satisfies("0.4.0", ">=0.3.0,<0.4.0") and not satisfies("0.4.0", "==0.3.0")


def test_every_requirements_example_accepts_this_release():
    found = 0
    for page in PAGES:
        for block in re.findall(r"```ya?ml\n(.*?)```", read(page), re.S):
            for entry in (yaml.safe_load(block) or {}).get("collections", []) if "collections:" in block else []:
                if isinstance(entry, dict) and entry.get("name") == "mtls.fleet" and "version" in entry:
                    found += 1
                    assert satisfies(VERSION, str(entry["version"])), f"{page}: version {entry['version']!r} refuses {VERSION}"
    assert found >= 1, "README.md shows how to pin the collection in requirements.yml"


def test_every_tarball_and_pinned_install_names_this_release():
    for page in PAGES:
        text = read(page)
        for named in re.findall(r"mtls-fleet-(\d+\.\d+\.\d+)\.tar\.gz", text) + re.findall(r"mtls\.fleet:(?:==)?(\d+\.\d+\.\d+)", text):
            assert named == VERSION or page == "docs/upgrading.md", f"{page} names {named}, galaxy.yml {VERSION}"


def test_the_changelog_releases_galaxy_yml_s_version():
    releases = sorted(yaml.safe_load(read("changelogs/changelog.yaml"))["releases"], key=key)
    assert releases[-1] == VERSION, f"changelogs/changelog.yaml's latest release is {releases[-1]}, galaxy.yml says {VERSION}: antsibull-changelog release"
    headings = re.findall(r"^v(\d+\.\d+\.\d+)\n=+$", read("CHANGELOG.rst"), re.M)
    assert headings and headings[0] == VERSION, f"CHANGELOG.rst's latest release is {headings[:1]}, galaxy.yml says {VERSION}"
    assert sorted(headings, key=key) == releases
