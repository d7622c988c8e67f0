#!/usr/bin/env bash
# Set up (first run only) and scan the bundled sample clip with the bundled default model.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/python app.py --input samples --output results "$@"
