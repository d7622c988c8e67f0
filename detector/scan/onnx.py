"""ONNX Runtime for every network the scanner runs: the classifier (a SavedModel's serving
signature, through tf2onnx) and MTCNN's three (facenet-pytorch's torch modules, through
torch.onnx), each converted once, cached, and kept honest by one check (checked_session).

On a CPU the same networks run faster in ONNX Runtime, and without their frameworks the scanner
starts in a fraction of the time (bench/runtime_check.py, bench/benchmark.py). A conversion is
used only while its outputs on fixed check inputs match its framework's within ONNX_TOLERANCE; the
cached file carries the framework's outputs on them, so a later load checks it without importing
TensorFlow or torch at all. A network that cannot be converted is recorded, and not tried again
until the converting packages change.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import detector.runtime as _runtime
from detector.files import atomic_write

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("detector")

ONNX_OPSET = 17  # tf2onnx 1.17 writes up to 18; 17 covers every op of these conv nets and loads in ORT ≥ 1.13
ONNX_TOLERANCE = 1e-4  # the largest |Δ| from its framework that ONNX Runtime may show on the check inputs
REFERENCE_KEY = "detector.tensorflow_p_fake"  # ONNX metadata: the classifier's p(fake) in TensorFlow on the check crops
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


@dataclass(frozen=True)
class Conversion:
    """One network's way into ONNX Runtime. `convert` (which may import the framework) gives the
    serialized ONNX model and the framework's own outputs on the check inputs; `outputs` gives a
    session's outputs on the same inputs, in the same order."""
    cached: Path  # cache_file(the network's fingerprint)
    framework: str  # "TensorFlow", "torch": for the messages
    reference_key: str  # the metadata entry that holds the framework's outputs
    convert: Callable[[], tuple[bytes, np.ndarray]]
    outputs: Callable[[onnxruntime.InferenceSession], np.ndarray]


def checked_session(conversion: Conversion, chosen: list[str], retry: bool = False) -> onnxruntime.InferenceSession:
    """A session that gives the framework's outputs within ONNX_TOLERANCE: the cached conversion
    where it still passes the check against the outputs stored in it (no framework imported), else
    converted, checked and cached (atomically, so a crash or a second process converting at once
    never leaves a torn file). OnnxUnavailable says why not; a network that could not be converted
    is not tried again (seconds to minutes each time) until the converting packages change, or
    `retry` asks."""
    cached = conversion.cached
    if cached.is_file():
        try:
            found = session(str(cached), chosen)
            reference = np.array(json.loads(found.get_modelmeta().custom_metadata_map[conversion.reference_key]),
                                 np.float32)
            return _checked(found, conversion, reference)
        except Exception as exc:  # torn, corrupt, from an older version, or disagreeing: convert again
            log.info("%s: cached ONNX model unusable (%s); converting again", cached, first_line(exc))
    failed = cached.with_suffix(".failed")
    if not retry and (reason := earlier_failure(failed)):
        raise OnnxUnavailable(f"{reason} (found earlier; delete {failed} to try again)")
    try:
        data, reference = conversion.convert()
        data = with_metadata(data, {conversion.reference_key: json.dumps(np.asarray(reference, np.float32).ravel().tolist())})
        try:
            made = _checked(session(data, chosen), conversion, np.asarray(reference, np.float32))
        except OnnxUnavailable:
            raise
        except Exception as exc:  # onnxruntime's own error types: an op it lacks, a bad graph
            raise OnnxUnavailable(f"ONNX Runtime cannot run the converted model ({first_line(exc)})") from None
    except OnnxMissing:
        raise
    except OnnxUnavailable as exc:
        with contextlib.suppress(OSError):
            atomic_write(failed, json.dumps({"reason": str(exc), "versions": converter_versions()}).encode())
        raise
    with contextlib.suppress(OSError):  # an unwritable cache folder: nothing was recorded there
        failed.unlink(missing_ok=True)
    try:
        atomic_write(cached, data)
    except OSError as exc:
        log.warning("cannot cache the ONNX model in %s (%s): it is converted again on every load; "
                    "set DETECTOR_CACHE to a writable folder", cached.parent, exc.strerror or exc)
    return made


def _checked(found: onnxruntime.InferenceSession, conversion: Conversion,
             reference: np.ndarray) -> onnxruntime.InferenceSession:
    outputs = np.asarray(conversion.outputs(found), np.float32).ravel()
    gap = float(np.max(np.abs(outputs - reference.ravel()))) if outputs.shape == reference.ravel().shape else np.nan
    if not gap <= ONNX_TOLERANCE:  # NaN fails too
        raise OnnxUnavailable(f"its output differs from {conversion.framework}'s by {gap:.1e} "
                              f"(> {ONNX_TOLERANCE:g}) on the check inputs")
    return found


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


def export_torch(module, example: np.ndarray, outputs: list[str], dynamic: dict[str, dict[int, str]]) -> bytes:
    """A torch module as a serialized ONNX model (the TorchScript exporter): its input named
    "input", its outputs `outputs`, and the `dynamic` axes of each (name → {axis: axis name}) left free."""
    import io
    import warnings

    import torch

    buffer = io.BytesIO()
    try:
        # the TorchScript exporter (deprecated in torch 2.9, still the one that needs no onnxscript)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (torch.from_numpy(example),), buffer, input_names=["input"], output_names=outputs,
                              dynamic_axes=dynamic,
                              opset_version=ONNX_OPSET, dynamo=False)
    except Exception as exc:  # the exporter raises anything from unsupported ops to tracer errors
        raise OnnxUnavailable(f"torch.onnx cannot convert it ({type(exc).__name__}: {first_line(exc)})") from None
    return buffer.getvalue()


def converter_versions() -> dict[str, str | None]:
    """The versions of what converts and runs a model: a conversion failed with others is tried again."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: installed(name) for name in ("tensorflow", "tf2onnx", "torch", "facenet-pytorch", "onnx", "onnxruntime")}


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
