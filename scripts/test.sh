#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite on both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest -n 2 -q --durations=15 "$@"
