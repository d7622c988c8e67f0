"""The one library call behind app.py: load the model, scan every input, report, return the exit status."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from detector.faces import FaceDetector
from detector.model import DEFAULT_MODEL_DIR, Model, ModelError
from detector.runtime import DeviceError, resolve_device
from detector.pipeline import EXIT_USAGE, Scanner, Settings, find_inputs, run_batch
from detector.results import ResultsFolder

log = logging.getLogger("detector")

__all__ = ["Settings", "resolve_device", "run"]

NO_DEFAULT_MODEL = (
    "error: no model installed at {path}.\n"
    "  Pass a SavedModel folder with --model, or train one: python -m detector.train --help (see README.md)."
)


def run(source: Path, output: Path, model_path: Path | None, device: str, settings: Settings,
        overwrite: bool = False, progress: bool = True) -> int:
    try:
        device = resolve_device(device)
        if model_path is None and not (DEFAULT_MODEL_DIR / "saved_model.pb").exists():
            print(NO_DEFAULT_MODEL.format(path=DEFAULT_MODEL_DIR), file=sys.stderr)
            return EXIT_USAGE
        model = Model(model_path or DEFAULT_MODEL_DIR, device)
    except (ModelError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = ResultsFolder(output)
    except PermissionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    inputs = find_inputs(source)
    if not inputs:
        print(f"error: no videos or images found in {source}", file=sys.stderr)
        return EXIT_USAGE
    scanner = Scanner(model, FaceDetector("cuda" if device == "gpu" else "cpu"), settings)
    log.info("model %s (%s), threshold %.3f, %d input(s)", model.path, model.fingerprint,
             settings.threshold_for(model), len(inputs))
    summary = run_batch(scanner, inputs, results, overwrite=overwrite, progress=progress)
    print(summary.line(), file=sys.stderr)
    print(f"Results: {results.csv_path}", file=sys.stderr)
    if summary.interrupted:
        print("Interrupted: the results above are saved; run the same command again to resume.", file=sys.stderr)
    return summary.exit_code
