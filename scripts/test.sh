#!/usr/bin/env bash
# README command 2: set up a fresh Debian machine and run every test.
#   - unit tests, then integration tests that drive real ansible-playbook runs against a real
#     Pebble and real HAProxy processes on loopback addresses;
#   - on the default Python 3.11 with ansible-core 2.19, on Python 3.13 with the newest
#     ansible-core when that interpreter exists (pyenv on these machines), and the role and
#     batch tests on the oldest supported line, ansible-core 2.17 (Python 3.11).
# The runs go side by side, the second and third each in its own network namespace (its own
# loopback, so the fixed test ports never collide) when `unshare --net` works here, one after
# the other otherwise. Extra arguments go to pytest (e.g. -k edge).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
CERTOPS_VENV=.venv-core217 CERTOPS_TEST_REQUIREMENTS=tests/requirements-oldest.txt bash scripts/setup.sh
PY313=${CERTOPS_PY313:-/root/.pyenv/versions/3.13.0/bin/python3}
with_py313=
if [ -x "$PY313" ] && [ -z "${CERTOPS_SKIP_PY313:-}" ]; then
  CERTOPS_PYTHON="$PY313" CERTOPS_VENV=.venv-py313 bash scripts/setup.sh
  with_py313=1
fi

# README command 1, from the state a fresh clone has: CI runs the demo so that it never breaks
# unnoticed (first run orders, second changes nothing, every handshake verified), then checks
# that --stop leaves nothing running. A demo a developer left running is stopped first.
echo "== demo (README command 1)"
.venv/bin/python scripts/demo.py --stop >/dev/null 2>&1 || true
rm -rf .demo
bash scripts/demo.sh
.venv/bin/python scripts/demo.py --stop

# Types and lint of the collection's Python (configs: mypy.ini, ruff.toml); mypy reads the code
# through the ansible_collections path the tests use.
mkdir -p .tmp/collections/ansible_collections/certops
[ -L .tmp/collections/ansible_collections/certops/acme ] || ln -s "$PWD" .tmp/collections/ansible_collections/certops/acme
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
(cd .tmp/collections && ../../.venv/bin/mypy --config-file ../../mypy.ini -p ansible_collections.certops.acme.plugins)

describe() {
  echo "== Python $("$1/bin/python" -c 'import sys; print(sys.version.split()[0])'), $("$1/bin/ansible" --version | sed -n 1p)"
}

# The oldest line runs what its users run: the layout roles, check mode, served truth and the batch.
OLDEST_TESTS=(tests/integration/test_edge_role.py tests/integration/test_served.py
              tests/integration/test_check_mode.py tests/integration/test_certificate_batch.py)
# The slowest tests are listed at the end of this leg, to see where the suite's time goes.
leg_311=(.venv/bin/python -m pytest --durations=25 --basetemp=/tmp/certops-tests-py311 "$@")
if [ -n "$with_py313" ]; then
  # ansible-test sanity runs once, on the newest ansible-core (the Python 3.13 leg): a minute
  # of the 3.11 leg's two cores, for rules the newest core holds anyway.
  leg_311+=(--deselect tests/integration/test_collection.py::test_ansible_test_sanity_passes_on_this_python)
fi
leg_313=(.venv-py313/bin/python -m pytest -p no:cacheprovider --basetemp=/tmp/certops-tests-py313 "$@")
leg_217=(.venv-core217/bin/python -m pytest -p no:cacheprovider --basetemp=/tmp/certops-tests-core217
         "${OLDEST_TESTS[@]}" "$@")

if ! unshare --net true 2>/dev/null; then
  describe .venv
  "${leg_311[@]}"
  describe .venv-core217
  "${leg_217[@]}"
  if [ -n "$with_py313" ]; then
    describe .venv-py313
    "${leg_313[@]}"
  fi
  exit 0
fi

logs=$(mktemp -d /tmp/certops-test-logs.XXXXXX)
started=$(date +%s)
export -f describe
in_own_network() {
  # Tests that change network interfaces (test_partition.py) run only where this is set.
  # shellcheck disable=SC2016  # $@ belongs to the inner shell
  CERTOPS_TEST_PRIVATE_NETNS=1 unshare --net bash -c 'ip link set lo up && describe "$0" && exec "$@"' "$@"
}
{ describe .venv; "${leg_311[@]}"; } >"$logs/py311.log" 2>&1 &
pids=($!)
in_own_network .venv-core217 "${leg_217[@]}" >"$logs/core217.log" 2>&1 &
pids+=($!)
if [ -n "$with_py313" ]; then
  # The namespace has no network: ansible-test prepares its sanity virtualenvs (from PyPI) now.
  bash scripts/sanity.sh .venv-py313 --prime-venvs >/dev/null
  in_own_network .venv-py313 "${leg_313[@]}" >"$logs/py313.log" 2>&1 &
  pids+=($!)
else
  echo "== Python 3.13 not found at $PY313: the newest ansible-core run is skipped" >"$logs/py313.log"
fi
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
cat "$logs/py311.log" "$logs/core217.log" "$logs/py313.log"
echo "== all runs took $(( $(date +%s) - started )) s side by side"
exit "$status"
