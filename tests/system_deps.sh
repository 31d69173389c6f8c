#!/usr/bin/env bash
# Installs the Debian packages some tests need (a real Prometheus, a headless browser) when they
# are missing, so that those tests run on a fresh machine instead of skipping. Listed, one a line,
# in tests/system-packages.txt. Needs root (CI and the developers' machines run as root).
# Then the pinned clients of the test applications (kafkajs, Quix Streams): tests/apps/install.sh.
set -euo pipefail
bash "$(dirname "$0")/apps/install.sh"
list="$(dirname "$0")/system-packages.txt"
[ -f "$list" ] || exit 0
missing=()
while read -r pkg _; do
  case "$pkg" in ""|\#*) continue ;; esac
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < "$list"
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages the tests need: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
