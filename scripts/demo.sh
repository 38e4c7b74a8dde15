#!/usr/bin/env bash
# Set up the core install (no torch) and run the main job on the built-in default:
# a generated stimulus through the built-in virtual opto levelling amplifier, fitted by Newton.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
exec .venv/bin/dynamatch fit -o demo-output/model.json "$@"
