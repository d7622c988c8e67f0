"""ONNX Runtime for the model stage: converting a SavedModel's serving signature once, caching it,
and the check that keeps it honest.

On a CPU the same network scores faster in ONNX Runtime (bench/runtime_check.py measures both on
any model). A conversion is used only while its p(fake) matches TensorFlow's within
ONNX_TOLERANCE on a fixed batch of check crops; the cached file carries TensorFlow's p(fake) on
them, so a later load checks it without importing TensorFlow at all. A model that cannot be
converted is recorded, and not tried again until the converting packages change.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import detector.runtime as _runtime

if TYPE_CHECKING:
    import onnxruntime

ONNX_OPSET = 17  # tf2onnx 1.17 writes up to 18; 17 covers every op of these conv nets and loads in ORT ≥ 1.13
ONNX_TOLERANCE = 1e-4  # the largest |Δ p(fake)| from TensorFlow that ONNX Runtime may show on the check crops
REFERENCE_KEY = "detector.tensorflow_p_fake"  # ONNX metadata: TensorFlow's p(fake) on the check crops
OUTPUT_KEY = "detector.output"  # ONNX metadata: the serving signature's output that holds the scores


class OnnxUnavailable(Exception):
    """Why this model cannot be scored in ONNX Runtime (conversion or check failed); TensorFlow scores it."""


class OnnxMissing(OnnxUnavailable):
    """ONNX Runtime or tf2onnx is not installed, or there is no GPU build of it: expected, not a fault."""


def providers(device: str) -> list[str]:
    """ONNX Runtime's execution providers for a device (OnnxMissing where it has none)."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxMissing("onnxruntime is not installed (pip install -r requirements.txt)") from None
    if device != "gpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise OnnxMissing("on the GPU it needs onnxruntime-gpu (CUDAExecutionProvider)")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def cache_file(fingerprint: str) -> Path:
    """Where a model's conversion is cached: named by the model's fingerprint (graph, weights, model.json)."""
    return onnx_cache_folder() / f"{fingerprint}-opset{ONNX_OPSET}.onnx"


def onnx_cache_folder() -> Path:
    """Where converted models are kept: $DETECTOR_CACHE, else $XDG_CACHE_HOME/deepfake-detector,
    else ~/.cache/deepfake-detector."""
    if os.environ.get("DETECTOR_CACHE"):
        return Path(os.environ["DETECTOR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "deepfake-detector"


def onnx_threads() -> int:
    """Intra-op threads for ONNX Runtime: $DETECTOR_ONNX_THREADS, else half the cores this process
    may use, so decoding (ffmpeg) and face detection (MTCNN) keep the other half. On 2 cores one
    thread scored Lite0 crops faster than two beside another busy process (docs/how-it-works.md, "Models";
    bench/runtime_check.py measures it on any machine)."""
    override = os.environ.get("DETECTOR_ONNX_THREADS", "")
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, _runtime.cpu_cores() // 2)


def convert(signature, input_name: str) -> bytes:
    """The serving signature as a serialized ONNX model (tf2onnx, variables frozen into it)."""
    try:
        import tf2onnx
    except ImportError:
        raise OnnxMissing("tf2onnx is not installed (pip install -r requirements.txt)") from None
    tf = _runtime.tf
    spec = signature.structured_input_signature[1][input_name]
    traced = tf.function(lambda image: signature(**{input_name: image}))
    try:
        with _runtime.quiet_native_stderr():
            proto, _ = tf2onnx.convert.from_function(
                traced, input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=input_name)], opset=ONNX_OPSET)
        return proto.SerializeToString()
    except Exception as exc:  # tf2onnx raises anything from unsupported ops to protobuf size limits
        raise OnnxUnavailable(f"tf2onnx cannot convert it ({type(exc).__name__}: {first_line(exc)})") from None


def converter_versions() -> dict[str, str | None]:
    """The versions of what converts and runs a model: a conversion failed with others is tried again."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: installed(name) for name in ("tensorflow", "tf2onnx", "onnx", "onnxruntime")}


def earlier_failure(marker: Path) -> str | None:
    """Why this model could not be converted before, with these same packages; else None."""
    try:
        record = json.loads(marker.read_text())
        return str(record["reason"]) if record["versions"] == converter_versions() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def with_metadata(model: bytes, entries: dict[str, str]) -> bytes:
    """The serialized ONNX model with `entries` added to its metadata (read back by ONNX Runtime)."""
    import onnx

    proto = onnx.load_from_string(model)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()


def session(model: str | bytes, providers: list[str]) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on a model file or serialized model, quiet, with onnx_threads()."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = onnx_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings (e.g. unused initializers) are not the user's
    return onnxruntime.InferenceSession(model, options, providers=providers)


def check_crops(size: int) -> np.ndarray:
    """A fixed batch both runtimes must score alike: seeded noise, and flat black, grey and white."""
    crops = np.random.default_rng(10).integers(0, 256, (8, size, size, 3), np.uint8)
    crops[-3:] = np.array([0, 128, 255], np.uint8)[:, None, None, None]
    return crops


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
