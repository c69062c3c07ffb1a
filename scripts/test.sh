#!/usr/bin/env bash
# README command 2: set up a fresh Debian machine and run every test.
#   - unit tests, then integration tests that drive real ansible-playbook runs against a real
#     Pebble, HAProxy, nginx, BIND, PowerDNS, OpenBao and acme2certifier on loopback addresses;
#   - what depends on ansible-core (unit tests, the layout roles, the batch, check mode) on
#     every supported line: Python 3.11 with ansible-core 2.19 (the default), the oldest line
#     ansible-core 2.17, and Python 3.13 with the newest ansible-core (pyenv on these machines);
#     everything on the newest line (cases marked cross_product only there).
# The runs go side by side, all but the first each in its own network namespace (its own
# loopback, so the fixed test ports never collide) when `unshare --net` works here, one after
# the other otherwise. Extra arguments go to pytest (e.g. -k edge).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
logs=$(mktemp -d /tmp/certops-test-logs.XXXXXX)
# The collection as the tests and mypy import it: this checkout under an ansible_collections path.
mkdir -p .tmp/collections/ansible_collections/certops
[ -L .tmp/collections/ansible_collections/certops/acme ] || ln -s "$PWD" .tmp/collections/ansible_collections/certops/acme
# The other lines' virtualenvs (downloads and disk) are made in the background, each with its
# log; each line's legs start as soon as its virtualenv is ready. ansible-test prepares its
# sanity virtualenvs (from PyPI) then too: the legs' namespaces have no network.
PY313=${CERTOPS_PY313:-/root/.pyenv/versions/3.13.0/bin/python3}
with_py313=
[ -x "$PY313" ] && [ -z "${CERTOPS_SKIP_PY313:-}" ] && with_py313=1
setup_core217() {
  CERTOPS_VENV=.venv-core217 CERTOPS_TEST_REQUIREMENTS=tests/requirements-oldest.txt bash scripts/setup.sh \
    >"$logs/setup-core217.log" 2>&1 || { cat "$logs/setup-core217.log"; echo "== setting up .venv-core217 failed (above)"; return 1; }
}
setup_py313() {
  { CERTOPS_PYTHON="$PY313" CERTOPS_VENV=.venv-py313 bash scripts/setup.sh &&
    bash scripts/sanity.sh .venv-py313 --prime-venvs; } >"$logs/setup-py313.log" 2>&1 ||
    { cat "$logs/setup-py313.log"; echo "== setting up .venv-py313 failed (above)"; return 1; }
}
# The execution environment image (ansible-builder and podman on a base made from Debian
# packages) needs PyPI and Debian's mirror, which the legs' namespaces do not reach: it is
# built now, beside the demo and the first legs, and its test waits for it (the marker file).
ee_ready=
if unshare --net true 2>/dev/null; then
  ee_ready=$logs/ee-image
  .venv/bin/python -m tests.harness.containers "$(mktemp -d /tmp/certops-ee.XXXXXX)" "$ee_ready" \
    >"$logs/ee-build.log" 2>&1 &
  export CERTOPS_TEST_EE_READY=$ee_ready
fi

# README command 1, from the state a fresh clone has: CI runs the demo so that it never breaks
# unnoticed (first run orders, second changes nothing, every handshake verified), then checks
# that --stop leaves nothing running. A demo a developer left running is stopped first. Then the
# types and lint of the collection's Python (configs: mypy.ini, ruff.toml); mypy reads the code
# through the ansible_collections path the tests use.
demo_and_checks() {
  echo "== demo (README command 1)"
  .venv/bin/python scripts/demo.py --stop >/dev/null 2>&1 || true
  rm -rf .demo
  bash scripts/demo.sh
  .venv/bin/python scripts/demo.py --stop
  echo "== ruff"
  .venv/bin/ruff check .
  echo "== mypy"
  (cd .tmp/collections && ../../.venv/bin/mypy --config-file ../../mypy.ini -p ansible_collections.certops.acme.plugins)
}

describe() {
  echo "== $2: Python $("$1/bin/python" -c 'import sys; print(sys.version.split()[0])'), $("$1/bin/ansible" --version | sed -n 1p)"
}

# What runs on every supported line (ansible-core 2.17 to the newest, Python 3.11 to 3.13): the
# unit tests, the two layout roles and the batch with check mode - what users run and what
# depends on ansible-core (roles, templating, argument specs, check mode, module execution).
# Everything else (the engine against real CAs, DNS and OpenBao, served truth, the collection's
# own checks, ansible-test sanity) needs only the newest line, where it runs in three parts side
# by side (five legs on two cores keep both busy until the end, where four left one idle); the
# third part is "everything but the first two", so every test runs on the newest line whatever
# is added.
EVERY_LINE=(tests/unit tests/integration/test_edge_role.py tests/integration/test_passthrough_role.py
            tests/integration/test_certificate_batch.py tests/integration/test_check_mode.py)
NEWEST_A=("${EVERY_LINE[@]}")
NEWEST_B=(tests/integration/test_served.py tests/integration/test_certificates_role.py
          tests/integration/test_collection.py tests/integration/test_partition.py tests/integration/test_awx.py
          tests/integration/test_services.py tests/integration/test_formats.py tests/integration/test_renew_orphans.py)
# Runs once, in the leg with the most room: the job runs inside the image, so the leg's own
# ansible-core plays no part in it.
ONCE_WHERE_ROOM=(tests/integration/test_execution_environment.py)
newest_c_ignores=()
for path in "${NEWEST_A[@]}" "${NEWEST_B[@]}" "${ONCE_WHERE_ROOM[@]}"; do newest_c_ignores+=(--ignore "$path"); done
not_every_line=()
for path in "${EVERY_LINE[@]}" "${ONCE_WHERE_ROOM[@]}"; do not_every_line+=(--ignore "$path"); done

# The older lines skip the cases marked cross_product (combinations the newest line runs;
# every template and option still runs on every line through another case). The oldest line
# shares the default line's Python 3.11 and libraries, so of the engine's unit tests (pure
# Python) it runs only those that go through ansible-core.
OLDER_LINES=()
[ -n "$with_py313" ] && OLDER_LINES=(-m "not cross_product")  # else no line would run them
pure_engine_units=()
for path in tests/unit/plugins/module_utils/_acme/test_*.py; do
  case "${path##*/}" in
    test_masking.py|test_dependencies.py|test_kill_during_writes.py) ;;  # through ansible-core
    *) pure_engine_units+=(--ignore "$path") ;;
  esac
done
# The slowest tests are listed at the end of each leg, to see where the suite's time goes.
leg_311=(.venv/bin/python -m pytest --durations=15 --basetemp=/tmp/certops-tests-py311 "${OLDER_LINES[@]}"
         "${EVERY_LINE[@]}" "$@")
leg_217=(.venv-core217/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp=/tmp/certops-tests-core217
         "${OLDER_LINES[@]}" "${EVERY_LINE[@]}" "${pure_engine_units[@]}" "${ONCE_WHERE_ROOM[@]}" "$@")
leg_313a=(.venv-py313/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp=/tmp/certops-tests-py313a
          "${NEWEST_A[@]}" "$@")
leg_313b=(.venv-py313/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp=/tmp/certops-tests-py313b
          "${NEWEST_B[@]}" "$@")
leg_313c=(.venv-py313/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp=/tmp/certops-tests-py313c
          tests "${newest_c_ignores[@]}" "$@")

if ! unshare --net true 2>/dev/null; then
  # One after the other; without Python 3.13 the default line runs everything.
  setup_core217
  [ -z "$with_py313" ] || setup_py313
  demo_and_checks
  describe .venv "every line"
  "${leg_311[@]}"
  describe .venv-core217 "every line"
  "${leg_217[@]}"
  if [ -n "$with_py313" ]; then
    describe .venv-py313 "newest line, first part"
    "${leg_313a[@]}"
    describe .venv-py313 "newest line, second part"
    "${leg_313b[@]}"
    describe .venv-py313 "newest line, third part"
    "${leg_313c[@]}"
  else
    .venv/bin/python -m pytest --basetemp=/tmp/certops-tests-py311-rest tests "${not_every_line[@]}" "$@"
  fi
  exit 0
fi

started=$(date +%s)
export -f describe
# shellcheck disable=SC2317  # called through timed()
in_own_network() {
  # Tests that change network interfaces (test_partition.py) run only where this is set.
  # shellcheck disable=SC2016  # $@ belongs to the inner shell
  CERTOPS_TEST_PRIVATE_NETNS=1 unshare --net bash -c 'ip link set lo up && describe "$0" "$1" && shift && exec "$@"' "$@"
}
timed() {
  # Runs a leg and notes how long it took (the closing lines of the output).
  local name=$1; shift
  local leg_started; leg_started=$(date +%s)
  local rc=0
  "$@" || rc=$?
  echo "$name $(( $(date +%s) - leg_started )) s (exit $rc)" >>"$logs/times"
  return "$rc"
}
# Every leg runs in a network namespace of its own, so the demo (on this namespace's loopback)
# runs beside them: the two cores are busy from the start, not only once the demo is done. Each
# line's legs start as soon as its virtualenv is ready.
timed "Python 3.11, every line:" in_own_network .venv "every line" "${leg_311[@]}" >"$logs/py311.log" 2>&1 &
pids=($!)
{ setup_core217 && timed "oldest ansible-core, every line:" in_own_network .venv-core217 "every line" "${leg_217[@]}"; } \
  >"$logs/core217.log" 2>&1 &
pids+=($!)
if [ -n "$with_py313" ]; then
  {
    setup_py313 || exit 1
    timed "newest line, first part:" in_own_network .venv-py313 "newest line, first part" "${leg_313a[@]}" \
      >"$logs/py313a.log" 2>&1 &
    newest=($!)
    timed "newest line, second part:" in_own_network .venv-py313 "newest line, second part" "${leg_313b[@]}" \
      >"$logs/py313b.log" 2>&1 &
    newest+=($!)
    timed "newest line, third part:" in_own_network .venv-py313 "newest line, third part" "${leg_313c[@]}" \
      >"$logs/py313c.log" 2>&1 &
    newest+=($!)
    failed=0
    for pid in "${newest[@]}"; do wait "$pid" || failed=1; done
    exit "$failed"
  } >"$logs/py313.log" 2>&1 &
  pids+=($!)
else
  # Without Python 3.13 the rest runs on the default line.
  timed "Python 3.11, the rest:" in_own_network .venv "the rest" .venv/bin/python -m pytest \
    --basetemp=/tmp/certops-tests-py311-rest tests "${not_every_line[@]}" "$@" >"$logs/py313a.log" 2>&1 &
  pids+=($!)
  echo "== Python 3.13 not found at $PY313: the newest ansible-core run is skipped" >"$logs/py313.log"
fi
# In the background too, so that errexit stops it at the first failure, as in the foreground.
demo_and_checks >"$logs/demo.log" 2>&1 &
pids+=($!)
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
for log in demo py311 core217 py313 py313a py313b py313c; do
  if [ -e "$logs/$log.log" ]; then cat "$logs/$log.log"; fi
done
echo "== the legs, side by side:"
cat "$logs/times" 2>/dev/null || true
echo "== all runs took $(( $(date +%s) - started )) s side by side"
exit "$status"
