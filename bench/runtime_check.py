"""ONNX Runtime against TensorFlow on one model: how far apart their p(fake) are, and how fast each is.

    python bench/runtime_check.py [--model models/default] [--input VIDEO_OR_FOLDER] [--crops 128] [--frames 32]
    DETECTOR_ONNX_THREADS=2 python bench/runtime_check.py ...   # ONNX Runtime on 2 threads instead

The crops are cut by the scanner's own stages (frames sampled, MTCNN, crop_face at the model's
input size) from a video or from the videos and images in a folder, up to --crops of them; without
--input they are --crops seeded random crops. Each runtime scores them once after a warm-up batch,
in batches of 16 as the scanner does; it prints crops/s for each and the largest |Δ p(fake)|.
Everything runs on the CPU; the ONNX model is converted on first use and cached (see docs/how-it-works.md, "Models").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.runtime import resolve_device  # noqa: E402  (torch before TensorFlow)
from detector.scan.model import DEFAULT_MODEL_DIR, Model, ModelError  # noqa: E402
from detector.scan.onnx import onnx_threads  # noqa: E402

BATCH = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                        help="SavedModel folder (default models/default)")
    parser.add_argument("--input", type=Path, default=None, help="a video, an image or a folder of them")
    parser.add_argument("--crops", type=int, default=128, help="crops to score (default 128)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    args = parser.parse_args()

    resolve_device("cpu")
    models = {}
    for runtime in ("tensorflow", "onnx"):
        start = time.perf_counter()
        try:
            models[runtime] = Model(args.model, "cpu", runtime=runtime)
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{runtime:<10} loaded in {time.perf_counter() - start:.1f} s")
    size = models["tensorflow"].input_size
    if args.input:
        crops, source = face_crops(args.input, args.crops, args.frames, size)
    else:
        crops, source = random_crops(args.crops, size)
    if len(crops) == 0:
        print(f"error: no faces found in {args.input}", file=sys.stderr)
        return 1
    print(f"model {models['tensorflow'].path} ({models['tensorflow'].fingerprint}); {len(crops)} {source} crops "
          f"{size}×{size}, batch {BATCH}; ONNX Runtime on {onnx_threads()} thread(s)")

    scores, rates = {}, {}
    for runtime, model in models.items():
        model.predict(crops[:BATCH], BATCH)  # warm-up: first-call tracing and allocations
        start = time.perf_counter()
        scores[runtime] = model.predict(crops, BATCH)
        rates[runtime] = len(crops) / (time.perf_counter() - start)
    for runtime, rate in rates.items():
        print(f"{runtime:<10} {rate:7.1f} crops/s ({rate / rates['tensorflow']:.2f}× TensorFlow)")
    gap = np.abs(scores["onnx"] - scores["tensorflow"])
    print(f"max |Δ p(fake)| {gap.max():.2e} (mean {gap.mean():.2e}); p(fake) range "
          f"{scores['tensorflow'].min():.3f}–{scores['tensorflow'].max():.3f}")
    return 0


def random_crops(n: int, size: int) -> tuple[np.ndarray, str]:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), np.uint8), "seeded random"


def face_crops(source: Path, n: int, frames: int, size: int) -> tuple[np.ndarray, str]:
    """Up to n face crops from the inputs under `source`, cut as the scanner cuts them."""
    from detector.scan.faces import FaceDetector
    from detector.scan.scanner import extract_faces, find_inputs

    detector, crops = FaceDetector("cpu"), []
    for path in find_inputs(source).paths:
        crops += [crop.image for crop in extract_faces(path, detector, frames, size).crops]
        if len(crops) >= n:
            break
    return np.stack(crops[:n]) if crops else np.zeros((0, size, size, 3), np.uint8), "face"


if __name__ == "__main__":
    sys.exit(main())
