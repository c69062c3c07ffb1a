#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root) for the demo and the tests:
#   - Debian packages: pebble (ACME test CA), haproxy, nginx + stream module, openssh-server
#   - a virtualenv in .venv (or $CERTOPS_VENV) with the controller requirements, ansible-core
#     and the test tools
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${CERTOPS_PYTHON:-python3}
VENV=${CERTOPS_VENV:-.venv}
APT_PACKAGES=(pebble haproxy nginx libnginx-mod-stream openssh-server openssh-client bind9 pdns-server pdns-backend-sqlite3 curl ca-certificates shellcheck git)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # Never let a package start its daemon (and grab port 80) on install: the tests and the demo
  # start their own processes on loopback ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test tooling: tests/requirements.txt, or another list (the oldest-ansible-core leg's).
TEST_REQUIREMENTS=${CERTOPS_TEST_REQUIREMENTS:-tests/requirements.txt}
stamp="$VENV/.certops-requirements"
wanted=$(cat requirements.txt "$TEST_REQUIREMENTS" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: preparing $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt -r "$TEST_REQUIREMENTS" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$wanted" > "$stamp"
fi

# The tests' second ACME server (tests/harness/a2c.py) lives in its own venv.
A2C_VENV=${CERTOPS_A2C_VENV:-.venv-a2c}
a2c_wanted=$(sha256sum tests/requirements-a2c.txt | cut -d' ' -f1)
if [ ! -x "$A2C_VENV/bin/python" ] || [ "$(cat "$A2C_VENV/.certops-requirements" 2>/dev/null)" != "$a2c_wanted" ]; then
  echo "setup: preparing $A2C_VENV (acme2certifier)"
  python3 -m venv "$A2C_VENV"
  "$A2C_VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements-a2c.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$a2c_wanted" > "$A2C_VENV/.certops-requirements"
fi

# sslyze, the TLS judge of tests/integration/test_layouts_under_review.py, in a venv of its own: it
# pins an older cryptography than the collection is tested with (tests/harness/judges.py).
SSLYZE_VENV=${CERTOPS_SSLYZE_VENV:-.venv-sslyze}
sslyze_wanted=$(sha256sum tests/requirements-sslyze.txt | cut -d' ' -f1)
if [ ! -x "$SSLYZE_VENV/bin/python" ] || [ "$(cat "$SSLYZE_VENV/.certops-requirements" 2>/dev/null)" != "$sslyze_wanted" ]; then
  echo "setup: preparing $SSLYZE_VENV (sslyze)"
  python3 -m venv "$SSLYZE_VENV"
  "$SSLYZE_VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements-sslyze.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$sslyze_wanted" > "$SSLYZE_VENV/.certops-requirements"
fi
