#!/usr/bin/env bash
# README command 2: set up a fresh Debian machine and run every test.
#   - unit tests, then integration tests that drive real ansible-playbook runs against a real
#     Pebble and real HAProxy processes on loopback addresses;
#   - on the default Python 3.11 with ansible-core 2.19, and on Python 3.13 with the newest
#     ansible-core when that interpreter exists (pyenv on these machines).
# The two runs go side by side: the Python 3.13 one in its own network namespace (its own
# loopback, so the fixed test ports never collide) when `unshare --net` works here, one after
# the other otherwise. Extra arguments go to pytest (e.g. -k edge).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
PY313=${CERTOPS_PY313:-/root/.pyenv/versions/3.13.0/bin/python3}
with_py313=
if [ -x "$PY313" ] && [ -z "${CERTOPS_SKIP_PY313:-}" ]; then
  CERTOPS_PYTHON="$PY313" CERTOPS_VENV=.venv-py313 bash scripts/setup.sh
  with_py313=1
fi

describe() {
  echo "== Python $("$1/bin/python" -c 'import sys; print(sys.version.split()[0])'), $("$1/bin/ansible" --version | sed -n 1p)"
}

leg_311=(.venv/bin/python -m pytest --basetemp=/tmp/certops-tests-py311 "$@")
leg_313=(.venv-py313/bin/python -m pytest -p no:cacheprovider --basetemp=/tmp/certops-tests-py313 "$@")

if [ -z "$with_py313" ]; then
  describe .venv
  "${leg_311[@]}"
  echo "== Python 3.13 not found at $PY313: the newest ansible-core run is skipped"
  exit 0
fi

if unshare --net true 2>/dev/null; then
  # The namespace has no network: ansible-test prepares its sanity virtualenvs (from PyPI) now.
  bash scripts/sanity.sh .venv-py313 --prime-venvs >/dev/null
  logs=$(mktemp -d /tmp/certops-test-logs.XXXXXX)
  started=$(date +%s)
  { describe .venv; "${leg_311[@]}"; } >"$logs/py311.log" 2>&1 &
  pid_311=$!
  export -f describe
  # shellcheck disable=SC2016  # $@ belongs to the inner shell
  unshare --net bash -c 'ip link set lo up && describe .venv-py313 && exec "$@"' leg-py313 "${leg_313[@]}" \
    >"$logs/py313.log" 2>&1 &
  pid_313=$!
  status=0
  wait "$pid_311" || status=1
  wait "$pid_313" || status=1
  cat "$logs/py311.log" "$logs/py313.log"
  echo "== both runs took $(( $(date +%s) - started )) s side by side"
  exit "$status"
fi

describe .venv
"${leg_311[@]}"
describe .venv-py313
"${leg_313[@]}"
