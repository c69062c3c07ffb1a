#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root) for the demo and the tests:
#   - Debian packages: pebble (ACME test CA), haproxy, nginx + stream module, openssh-server,
#     podman + runc + debootstrap (the execution environment test)
#   - a virtualenv in .venv (or $CERTOPS_VENV) with the controller requirements, ansible-core
#     and the test tools
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${CERTOPS_PYTHON:-python3}
VENV=${CERTOPS_VENV:-.venv}
APT_PACKAGES=(pebble haproxy nginx libnginx-mod-stream openssh-server openssh-client bind9 pdns-server pdns-backend-sqlite3 curl ca-certificates shellcheck git
              podman runc debootstrap postfix)

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
  # Postfix is a service under test (tests/harness/mail.py runs its own instance): the package
  # must not write a system configuration of its own.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
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

# Test tools whose pins clash with the collection's own get a venv each, made again only when
# their requirements file changes.
side_venv() {  # side_venv DIR REQUIREMENTS LABEL
  local venv=$1 requirements=$2 wanted
  wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.certops-requirements" 2>/dev/null)" != "$wanted" ]; then
    echo "setup: preparing $venv ($3)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    echo "$wanted" > "$venv/.certops-requirements"
  fi
}
# The tests' second ACME server (tests/harness/a2c.py).
side_venv "${CERTOPS_A2C_VENV:-.venv-a2c}" tests/requirements-a2c.txt acme2certifier
# sslyze, the TLS judge of tests/integration/test_layouts_under_review.py: it pins an older
# cryptography than the collection is tested with (tests/harness/judges.py).
side_venv "${CERTOPS_SSLYZE_VENV:-.venv-sslyze}" tests/requirements-sslyze.txt sslyze
