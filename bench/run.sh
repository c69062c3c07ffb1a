#!/usr/bin/env bash
# The benchmark in one command, on a fresh Debian machine (root):
#   - scripts/setup.sh (Pebble, HAProxy, the project venv), Debian's certbot and lego, GNU time,
#     and the PyPI "ansible" package (community.crypto) in its own venv (.venv-bench-crypto);
#   - bench/compare.py: certops.acme vs certbot vs lego vs community.crypto on one Pebble;
#   - bench/run.py: scale runs of certops.acme alone.
# Output: the tables on stdout and JSON under bench/results/. Extra arguments go to compare.py.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
missing=()
for pkg in certbot lego time; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x .venv-bench-crypto/bin/ansible-playbook ]; then
  python3 -m venv .venv-bench-crypto
  .venv-bench-crypto/bin/pip install -q --disable-pip-version-check "ansible>=11" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
fi

echo "== certops.acme vs certbot, lego, community.crypto"
.venv/bin/python bench/compare.py --sizes 10 100 --repeat 3 --repeat-large 2 "$@"
echo "== certops.acme alone: 200 fresh, then 1000 fresh and their idempotent re-runs (one task)"
.venv/bin/python bench/run.py --sizes 200 1000 --repeat 1
echo "== certops.acme.certificates role: 1000 certificates on one host, 100 on each of 20 hosts"
.venv/bin/python bench/run.py --hosts 1 --per-host 1000 --repeat 1
.venv/bin/python bench/run.py --hosts 20 --per-host 100 --repeat 1
