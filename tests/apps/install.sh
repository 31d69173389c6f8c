#!/usr/bin/env bash
# Installs the pinned clients of the applications tests/test_apps.py runs, each in its own place and
# never into our environment: kafkajs (tests/apps/node, `npm ci` from package-lock.json) and Quix
# Streams (tests/apps/quix/.venv, from requirements.txt, every version pinned: Quix Streams pins
# confluent-kafka below the version this project uses). Re-running skips what is already installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

command -v npm >/dev/null || { echo "npm is needed for the kafkajs test applications (Node.js 20)" >&2; exit 1; }
node_stamp="$here/node/node_modules/.lock.sha256"
node_want="$(sha256sum "$here/node/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
  echo "installing the kafkajs test applications' packages (npm ci)" >&2
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$node_want" > "$node_stamp"
fi

venv="$here/quix/.venv"
quix_stamp="$venv/requirements.sha256"
quix_want="$(sha256sum "$here/quix/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$quix_stamp" 2>/dev/null)" != "$quix_want" ]; then
  echo "installing the Quix Streams test application's virtualenv" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  log="$(mktemp)"
  "$venv/bin/python" -m pip install -q --no-deps -r "$here/quix/requirements.txt" >"$log" 2>&1 \
    || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
  "$venv/bin/python" -c "import quixstreams" >/dev/null 2>&1 || { echo "quixstreams does not import in $venv" >&2; exit 1; }
  echo "$quix_want" > "$quix_stamp"
fi
