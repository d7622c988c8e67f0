"""The one library call behind app.py: load the model, scan every input, report, return the exit status."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch  # noqa: F401  — before tensorflow, always (see detector.model)

from detector.faces import FaceDetector
from detector.model import DEFAULT_MODEL_DIR, Model, ModelError, quiet_native_stderr
from detector.pipeline import EXIT_USAGE, Scanner, Settings, find_inputs, run_batch
from detector.results import ResultsFolder

log = logging.getLogger("detector")

__all__ = ["Settings", "resolve_device", "run"]

NO_DEFAULT_MODEL = (
    "error: no model installed at {path}.\n"
    "  Pass a SavedModel folder with --model, or train one: python -m detector.train --help (see README.md)."
)


def resolve_device(name: str) -> str:
    """'cpu' or 'gpu'. On cpu, TensorFlow is kept off any GPU so torch and TF never fight over it."""
    import tensorflow as tf

    with quiet_native_stderr():
        gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "gpu" if gpus and torch.cuda.is_available() else "cpu"
    if name == "gpu" and not (gpus and torch.cuda.is_available()):
        raise ModelError("--device gpu: TensorFlow and torch do not both see a GPU on this machine")
    if name == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    return name


def run(source: Path, output: Path, model_path: Path | None, device: str, settings: Settings,
        overwrite: bool = False, progress: bool = True) -> int:
    try:
        device = resolve_device(device)
        if model_path is None and not (DEFAULT_MODEL_DIR / "saved_model.pb").exists():
            print(NO_DEFAULT_MODEL.format(path=DEFAULT_MODEL_DIR), file=sys.stderr)
            return EXIT_USAGE
        model = Model(model_path or DEFAULT_MODEL_DIR, device)
    except ModelError as exc:
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
