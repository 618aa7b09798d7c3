"""What the collection tarball must and must not carry, and versions that agree with its changelog.

    python tests/package/contents.py TARBALL
Exits non-zero naming every problem.
"""

import fnmatch
import json
import re
import sys
import tarfile

import yaml

REQUIRED = [
    "LICENSE", "README.md", "CHANGELOG.rst", "requirements.txt", "bindep.txt", "meta/runtime.yml", "meta/execution-environment.yml",
    "changelogs/changelog.yaml", "playbooks/site.yml", "plugins/modules/host_requirements.py", "SECURITY.md",
    "docs/upgrading.md", "docs/troubleshooting.md", "docs/examples/inventory/hosts.yml", "docs/examples/inventory/group_vars/all.yml",
] + [f"roles/{role}/{path}" for role in ("mtls_ca", "mtls_certs", "mtls_nginx", "mtls_app", "mtls_schedule")
     for path in ("README.md", "meta/argument_specs.yml")]

# Development and a used checkout's leftovers: none of it belongs to the collection.
FORBIDDEN = [
    ".venv/*", ".build/*", ".lab/*", ".ci/*", ".git/*", "*/__pycache__/*", "*.pyc", ".pytest_cache/*", "*/.pytest_cache/*",
    "tests/output/*", "Makefile", "ansible.cfg", "requirements-dev.txt", "scripts/*", "lab/*", "bench/*",
    "extensions/molecule/*", "extensions/demo/*", "tests/package/*", "tests/modules/*", "*.tar.gz", "changelogs/.plugin-cache.yaml",
    "requirements-docs.txt", ".cache/*", ".envrc", ".idea/*", ".tox/*", ".vscode/*", "*.swp", "*.swo", "*~", "*/.DS_Store", ".DS_Store",
    "docs/_build/*",
]


def problems(tarball):
    found = []
    with tarfile.open(tarball) as archive:
        names = [member.name for member in archive.getmembers() if member.isfile()]
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
        changelog = yaml.safe_load(archive.extractfile("changelogs/changelog.yaml"))
        plugins = {name: archive.extractfile(name).read().decode() for name in names if re.match(r"plugins/(modules|filter)/\w+\.py$", name)}
    found += [f"{path}: missing from the tarball" for path in REQUIRED if path not in names]
    found += [f"{name}: shipped, but it is development or local state (galaxy.yml build_ignore)"
              for name in names if any(fnmatch.fnmatch(name, pattern) for pattern in FORBIDDEN)]
    # galaxy.yml names the latest release (antsibull-changelog release makes one); a plugin on main
    # for the next release may say it comes with a version after it.
    version = manifest["version"]
    releases = sorted((changelog.get("releases") or {}), key=_key)
    if not releases or version != releases[-1]:
        found.append(f"galaxy.yml version {version} is not the latest release in changelogs/changelog.yaml "
                     f"({releases[-1] if releases else 'none'}): bump one or release with antsibull-changelog release")
    for name, text in sorted(plugins.items()):
        added = re.search(r"^version_added: *['\"]?([\d.]+)", text, re.M)
        if not added:
            found.append(f"{name}: no version_added")
        elif added.group(1) not in releases and (not releases or _key(added.group(1)) <= _key(releases[-1])):
            found.append(f"{name}: version_added {added.group(1)} is neither a release in changelogs/changelog.yaml "
                         f"nor a version after the latest ({releases[-1] if releases else 'none'})")
    return found


def _key(version):
    return tuple(int(part) for part in version.split("."))


if __name__ == "__main__":
    listed = problems(sys.argv[1])
    print("\n".join(listed) or f"{sys.argv[1]}: contents and versions as expected")
    sys.exit(1 if listed else 0)
