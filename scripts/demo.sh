#!/usr/bin/env bash
# README command 1: set up a fresh Debian machine and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${CERTOPS_VENV:-.venv}/bin/python" scripts/demo.py "$@"
