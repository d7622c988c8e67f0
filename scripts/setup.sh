#!/usr/bin/env bash
# Create .venv beside the repository and install the pinned requirements into it, once.
# Sourced by demo.sh and test.sh; rerunning is cheap (pip checks what is already there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# requirements-ray.txt is optional for users (--ray), installed here so its tests run too.
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-ray.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-ray.txt
  echo "$want" > "$stamp"
fi
