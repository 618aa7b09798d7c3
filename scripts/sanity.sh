#!/usr/bin/env bash
# ansible-test sanity on a clean copy of the tracked + new files: ansible-test needs the
# collection at .../ansible_collections/mtls/fleet and lists every file it finds there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Outside the checkout: inside it, ansible-test would list files through our git, which ignores .build/.
# The ansible-core (and Python) of the ansible-test first on PATH: scripts/test-matrix runs this
# with the oldest and newest ansible-core too, each in its own copy and HOME.
core=$(python -c 'import ansible.release; print(ansible.release.__version__)')
python=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
dest="${TMPDIR:-/tmp}/mtls-fleet-sanity-$core/ansible_collections/mtls/fleet"
rm -rf "$dest" && mkdir -p "$dest"
(cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$dest"

# ansible-test passes only HOME and PATH to the pip runs that build its test venvs, so it gets a
# HOME of its own: a pip.conf carrying this shell's PIP_* settings (index, CA bundle), and the pip
# bootstrap script it would otherwise download from a host outside the registries we reach.
home="$root/.build/sanity-home-$core"
mkdir -p "$home/.config/pip" "$home/.ansible/test/cache"
{
  echo "[global]"
  env | sed -n 's/^PIP_\([A-Z_]*\)=\(.*\)$/\1 \2/p' | while read -r name value; do
    printf '%s = %s\n' "$(echo "$name" | tr 'A-Z_' 'a-z-')" "$value"
  done
} >"$home/.config/pip/pip.conf"
pip_version=$(python -c 'import ansible_test, pathlib, re; print(re.search(r"pip=.([0-9.]+).", (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()).group(1))')
cp "$root/scripts/sanity/get_pip.py" "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"

cd "$dest"
HOME="$home" exec ansible-test sanity --requirements --python "$python" --color no "$@"
