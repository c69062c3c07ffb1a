#!/usr/bin/env bash
# README command 2: set up a fresh Debian machine and run every test.
#   - unit tests, then integration tests that drive real ansible-playbook runs against a real
#     Pebble and real HAProxy processes on loopback addresses;
#   - on the default Python 3.11 with ansible-core 2.19, and again on Python 3.13 with the
#     newest ansible-core when that interpreter exists (pyenv on these machines).
# Extra arguments go to pytest (e.g. -k edge).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "== Python $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'), $(.venv/bin/ansible --version | head -1)"
.venv/bin/python -m pytest "$@"

PY313=${CERTOPS_PY313:-/root/.pyenv/versions/3.13.0/bin/python3}
if [ -x "$PY313" ] && [ -z "${CERTOPS_SKIP_PY313:-}" ]; then
  CERTOPS_PYTHON="$PY313" CERTOPS_VENV=.venv-py313 bash scripts/setup.sh
  echo "== Python $(.venv-py313/bin/python -c 'import sys; print(sys.version.split()[0])'), $(.venv-py313/bin/ansible --version | head -1)"
  .venv-py313/bin/python -m pytest -p no:cacheprovider "$@"
else
  echo "== Python 3.13 not found at $PY313: the newest ansible-core run is skipped"
fi
