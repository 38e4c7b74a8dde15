#!/usr/bin/env bash
# Create .venv and install dynamatch.  `setup.sh core` = grey-box path only (no torch);
# `setup.sh dev` = everything the tests need (system packages for plugins, headless Chromium for the
# report test, torch CPU, extras).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-core}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ "$profile" = dev ] && command -v apt-get >/dev/null; then
  need=""
  for pkg in dpf-source zam-plugins lilv-utils lv2-dev sordi lsp-plugins-lv2 g++ make pkg-config chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
  done
  if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING' || true
if [ "$profile" = dev ]; then
  # torch first, from the local CPU wheel: otherwise a dependency pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING' || true
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING' || true
else
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v '^WARNING' || true
fi
.venv/bin/python -c "import dynamatch" || { echo "setup failed: dynamatch does not import" >&2; exit 1; }
