#!/usr/bin/env bash
# ansible-test sanity on this checkout without Docker: the checkout is copied under
# ansible_collections/certops/acme/ (ansible-test finds the collection by that path) and the
# tests run with --local on the Python of the given virtual environment (default .venv).
#   bash scripts/sanity.sh [VENV] [ansible-test sanity options...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
shift || true
PYTHON="$VENV/bin/python"
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# ansible-test bootstraps pip in each test's virtual environment with a script it downloads
# from a host this machine cannot reach; the stand-in does the same from the package index.
PIP_VERSION=$("$PYTHON" - <<'PY'
import re, ansible_test, pathlib
source = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp scripts/get_pip_offline.py ~/.ansible/test/cache/"get_pip_${PIP_VERSION//./_}.py"
# ansible-test 2.22 takes pylint's dill from a GitHub archive ("needed until dill released with
# 3.15 support", its sanity.pylint.in says), which this machine cannot reach either: in this
# virtualenv's copy of ansible-test, a requirement given as a URL becomes the package index's
# release of the same package (dill 0.4.1 serves Python 3.13, as it did for ansible-test 2.21).
REQUIREMENTS_DIR=$("$PYTHON" -c 'import ansible_test, pathlib; print(pathlib.Path(ansible_test.__file__).parent / "_data" / "requirements")')
sed -i -E 's#^([A-Za-z0-9_.-]+) @ https?://[^ ]+#\1#' "$REQUIREMENTS_DIR"/sanity.*.txt

WORK=$(mktemp -d /tmp/certops-sanity.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/certops/acme"
mkdir -p "$DEST"
# Tracked files plus new ones not ignored: what a commit of this working tree would hold.
{ git ls-files; git ls-files --others --exclude-standard; } | sort -u |
  while IFS= read -r path; do [ -e "$path" ] && printf '%s\0' "$path"; done |
  xargs -0 cp --parents -t "$DEST"
git -C "$DEST" init -q && git -C "$DEST" add -A

cd "$DEST"
PATH="$(cd "$OLDPWD" && cd "$VENV/bin" && pwd):$PATH" \
  ansible-test sanity --local --python "$PY_VERSION" --requirements --color no "$@"
