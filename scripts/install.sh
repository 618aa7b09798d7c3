#!/usr/bin/env bash
# Everything the README's commands need on a fresh Debian 12 machine, idempotent and quick when
# already done: system packages, the pinned Python toolchain in .venv, the collection link.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-system.sh

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install: Python toolchain (.venv, requirements-dev.txt)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" >"$stamp"
fi

# A lab CA host with its keys in a token needs python-pkcs11, which Debian 12 does not package: the
# wheel for the lab's Python (3.11, as here) is copied to it (molecule scenario ca_host).
wheel=$(grep '^python-pkcs11==' requirements-dev.txt | cut -d' ' -f1)
if ! ls .build/wheels/python_pkcs11-"${wheel#*==}"-*.whl >/dev/null 2>&1; then
  echo "install: $wheel wheel for the lab (.build/wheels)"
  .venv/bin/pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d .build/wheels "$wheel"
fi

# promtool tests the shipped Prometheus alert rules. Debian's prometheus package would also start a
# Prometheus server: only promtool is unpacked from it.
if [ ! -x .build/promtool/usr/bin/promtool ]; then
  echo "install: promtool from Debian's prometheus package (.build/promtool)"
  deb=$(mktemp -d)
  (cd "$deb" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
  rm -rf .build/promtool && mkdir -p .build/promtool/usr/bin
  dpkg-deb --fsys-tarfile "$deb"/prometheus_*.deb | tar -x -C .build/promtool ./usr/bin/promtool
  rm -rf "$deb"
fi

# ansible-test installs its own tools into the environment it runs from, so it gets a venv of its own.
if [ ! -x .build/sanity-venv/bin/ansible-test ]; then
  echo "install: ansible-test environment (.build/sanity-venv)"
  python3 -m venv .build/sanity-venv
  .build/sanity-venv/bin/pip install --quiet --disable-pip-version-check "$(grep '^ansible-core==' requirements-dev.txt)"
fi

# Ansible finds the collection at .build/collections/ansible_collections/mtls/fleet (ansible.cfg).
link=.build/collections/ansible_collections/mtls/fleet
if [ ! -L "$link" ]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn "$root" "$link"
fi
