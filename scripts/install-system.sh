#!/usr/bin/env bash
# System packages the lab needs (Debian 12). Idempotent: skips apt when everything is present.
set -euo pipefail
packages=(podman runc netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs
          mmdebstrap openssh-client openssl curl make shellcheck testssl.sh
          golang-go nodejs  # the reference apps (extensions/apps): Go built here, Node tested here
          softhsm2 opensc   # a real PKCS#11 token for the CA-key tests, and pkcs11-tool to read it back
          default-jre-headless postgresql)  # Java's keytool and the Java reference apps; a real PostgreSQL for its probe
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-system: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Above ~30 systemd containers, boots fail on the default inotify limit (see shared/lab-recipe.md).
if [ "$(sysctl -n fs.inotify.max_user_instances)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || echo "install-system: could not raise inotify limit" >&2
fi
