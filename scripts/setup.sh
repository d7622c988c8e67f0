#!/usr/bin/env bash
# Create .venv beside the repository and install the pinned requirements and the package into it, once.
# Run by demo.sh and test.sh; rerunning is cheap (a stamp records what is installed).
#   bash scripts/setup.sh             requirements.txt: everything the scanner and trainer need
#   bash scripts/setup.sh --with-ray  and requirements-ray.txt (optional for users, for --ray;
#                                     test.sh asks for it so the Ray tests run too)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
files=(requirements.txt)
if [ "${1:-}" = "--with-ray" ]; then
  files+=(requirements-ray.txt)
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
have=$(cat "$stamp" 2>/dev/null || true)
want=$(cat "${files[@]}" pyproject.toml | sha256sum | cut -d' ' -f1)
# A venv set up with Ray also serves a run that does not need it.
with_ray=$(cat requirements.txt requirements-ray.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$have" != "$want" ] && [ "$have" != "$with_ray" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "${files[@]/#/-r}"
  # The package itself, editable (this checkout's code), for the `deepfake-detector` command.
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
  # Convert MTCNN and the bundled model for ONNX Runtime now (about 20 s, cached in $DETECTOR_CACHE or
  # ~/.cache/deepfake-detector), so that the first scan starts as fast as every later one.
  .venv/bin/python -c "
from detector.scan.faces import FaceDetector
from detector.scan.model import DEFAULT_MODEL_DIR, Model
FaceDetector()
if (DEFAULT_MODEL_DIR / 'saved_model.pb').is_file():
    Model(DEFAULT_MODEL_DIR)
" || echo "note: the ONNX Runtime conversions failed here; the first scan tries again" >&2
fi
