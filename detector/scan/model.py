"""Stage 3 — model: score face crops with any TensorFlow SavedModel through its serving signature.

`model.json` beside the SavedModel states the contract (input size and range, sigmoid or
softmax and which index is fake, default threshold). Without one we assume the contract of the
model this product descends from: 224×224 RGB in [0,1], 2-class softmax, index 1 = fake.

The SavedModel is the model format, but on a CPU the crops are scored in ONNX Runtime where it is
installed and agrees with TensorFlow (onnx.py: conversion, cache and check); anything else falls
back to TensorFlow with one log line, so which runtime scored never changes a verdict.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.scan.aggregation import Calibration
import detector.runtime as _runtime
from detector.scan import limits, onnx

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("detector")

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "default"
RUNTIMES = ("auto", "onnx", "tensorflow")

Forward = Callable[[np.ndarray], np.ndarray]  # a batch as the model takes it → the raw output


class ModelError(Exception):
    """The model is missing, broken or does not match its contract; the message names the path."""


@dataclass(frozen=True)
class Contract:
    """What a network takes and gives: the scanner reads it from model.json, the trainer builds its
    networks to it and writes it there, so both scale crops and read p(fake) the same way."""
    input_size: int = 224
    input_range: tuple[float, float] = (0.0, 1.0)
    output: str = "softmax"  # "softmax": one column per class; "sigmoid": one column, p(fake)
    fake_index: int = 1
    threshold: float = 0.5
    calibration: Calibration | None = None  # {"scale": a, "bias": b}: Platt scaling of the video score
    card: dict = field(default_factory=dict)  # the rest of model.json: data card, metrics, …

    @classmethod
    def read(cls, path: Path, signature_size: int | None) -> "Contract":
        """The contract from model.json, or the original model's when there is none."""
        if not path.exists():
            return cls(input_size=signature_size or 224)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, found {type(data).__name__}")
            known = {k: data[k] for k in ("input_size", "output", "fake_index", "threshold") if k in data}
            special = ("input_range", "calibration")
            contract = cls(**known, input_range=tuple(data.get("input_range", (0.0, 1.0))),
                           calibration=_calibration(data.get("calibration")),
                           card={k: v for k, v in data.items() if k not in known and k not in special})
            contract._check_types()
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path}: not a valid model contract ({exc})") from None
        if contract.output not in ("softmax", "sigmoid"):
            raise ModelError(f"{path}: output must be 'softmax' or 'sigmoid', not {contract.output!r}")
        if not 0.0 <= contract.threshold <= 1.0:
            raise ModelError(f"{path}: threshold must lie in [0, 1]")
        return contract

    def _check_types(self) -> None:
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (isinstance(self.input_size, int) and not isinstance(self.input_size, bool) and self.input_size > 0):
            raise TypeError(f"input_size must be a positive whole number, not {self.input_size!r}")
        if not (isinstance(self.fake_index, int) and not isinstance(self.fake_index, bool) and self.fake_index >= 0):
            raise TypeError(f"fake_index must be a whole number ≥ 0, not {self.fake_index!r}")
        if not number(self.threshold):
            raise TypeError(f"threshold must be a number, not {self.threshold!r}")
        if not (len(self.input_range) == 2 and all(number(v) for v in self.input_range)
                and self.input_range[0] < self.input_range[1]):
            raise ValueError(f"input_range must be [low, high] with low < high, not {list(self.input_range)!r}")

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops as the network takes them: float32 scaled to the input range."""
        low, high = self.input_range
        return crops.astype(np.float32) * ((high - low) / 255.0) + low

    def p_fake(self, out: np.ndarray) -> np.ndarray:
        """p(fake) per row of the network's output (ValueError where its width cannot hold it)."""
        out = out.reshape(len(out), -1)
        if self.output == "sigmoid":
            if out.shape[1] != 1:
                raise ValueError(f"contract says sigmoid but the model gives {out.shape[1]} outputs")
            return out[:, 0].astype(np.float32)
        if out.shape[1] <= self.fake_index:
            raise ValueError(f"the model gives {out.shape[1]} outputs, fake index is {self.fake_index}")
        return out[:, self.fake_index].astype(np.float32)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(data.pop("card"))
        data["input_range"] = list(self.input_range)
        if self.calibration is None:
            del data["calibration"]
        return data


def _calibration(value) -> Calibration | None:
    if value is None:
        return None
    if not (isinstance(value, dict) and all(isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool)
                                            for k in ("scale", "bias"))):
        raise ValueError(f'calibration must be {{"scale": number, "bias": number}}, not {value!r}')
    return Calibration(float(value["scale"]), float(value["bias"]))


class Model:
    """A loaded SavedModel plus its contract; `predict` turns uint8 crops into p(fake).

    `runtime` picks what scores the crops: "tensorflow"; "onnx" (ModelError where it cannot); or
    "auto", ONNX Runtime where it is installed and agrees with TensorFlow, else TensorFlow — on the
    GPU only with onnxruntime-gpu. `self.runtime` says which one was chosen."""

    def __init__(self, path: Path, device: str = "cpu", runtime: str = "auto"):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.path = Path(path).resolve()
        if not (self.path / "saved_model.pb").is_file():
            raise ModelError(f"no SavedModel at {self.path} (expected saved_model.pb and variables/ inside)")
        self.device = device
        self.fingerprint = _fingerprint(self.path)
        self.runtime = "tensorflow"
        self._fn = None  # the serving signature, once TensorFlow has loaded it
        if runtime != "tensorflow":
            self._use_onnx(required=runtime == "onnx")
        if self.runtime == "tensorflow":
            if self._fn is None:
                self._load_saved_model()
            self._forward: Forward = self._tf_forward

    def _load_saved_model(self) -> None:
        """TensorFlow's serving signature, checked against the contract in model.json."""
        tf = _runtime.tf
        try:
            with tf.device("/GPU:0" if self.device == "gpu" else "/CPU:0"):
                self._loaded = tf.saved_model.load(str(self.path))
            self._fn = self._loaded.signatures["serving_default"]
        except (KeyError, ValueError, OSError, tf.errors.OpError) as exc:
            raise ModelError(f"cannot load the SavedModel at {self.path}: {str(exc).splitlines()[0]}") from None
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: the serving signature must take one image input, it takes {sorted(inputs)}")
        (self._input_name, spec), = inputs.items()
        self._output_name = next(iter(self._fn.structured_outputs))
        shape = spec.shape.as_list()
        if len(shape) != 4 or shape[-1] not in (3, None):
            raise ModelError(f"{self.path}: the serving input must be N×H×W×3 images, it is {shape}")
        self.contract = Contract.read(self.path / "model.json", shape[1])
        if shape[1] is not None and shape[1] != self.contract.input_size:
            raise ModelError(f"{self.path}: model.json says input_size {self.contract.input_size} "
                             f"but the model takes {shape[1]}×{shape[2]} images")
        self._check_outputs()

    def _check_outputs(self) -> None:
        """Catch a contract that cannot fit the model's output now, not once per input later."""
        outputs = self._fn.structured_outputs
        specs = list(outputs.values()) if isinstance(outputs, dict) else [outputs]
        try:
            width = specs[0].shape.as_list()[-1]
        except (AttributeError, IndexError, ValueError, TypeError):
            return  # shape not known statically: predict checks it
        if width is None:
            return
        if self.contract.output == "sigmoid" and width != 1:
            raise ModelError(f"{self.path}: contract says sigmoid but the model gives {width} outputs")
        if self.contract.output == "softmax" and width <= self.contract.fake_index:
            raise ModelError(f"{self.path}: the model gives {width} output(s), fake index is "
                             f"{self.contract.fake_index} (a one-output model needs \"output\": \"sigmoid\" in model.json)")

    @property
    def input_size(self) -> int:
        return self.contract.input_size

    def predict(self, crops: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """p(fake) per crop. Crops are N×S×S×3 uint8 at the contract's input size."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        scores = []
        for start in range(0, len(crops), batch_size):
            limits.check("scoring faces")  # an input's deadline (detector.scan.limits), where one is set
            scores.append(self._p_fake(self._forward(self.to_input(crops[start:start + batch_size]))))
        return np.concatenate(scores)

    def _tf_forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(**{self._input_name: _runtime.tf.constant(batch)})[self._output_name])

    def _use_onnx(self, required: bool) -> None:
        """Score in ONNX Runtime (onnx.checked_session: the cached conversion, else converted now),
        or say in one line why TensorFlow scores (a ModelError instead where ONNX was `required`)."""
        try:
            session = onnx.checked_session(
                onnx.Conversion(onnx.cache_file(self.fingerprint), "TensorFlow", onnx.REFERENCE_KEY, self._convert,
                                self._check_scores),
                onnx.providers(self.device), retry=required)
        except onnx.OnnxUnavailable as exc:
            if required:
                raise ModelError(f"{self.path}: cannot run in ONNX Runtime: {exc}") from None
            (log.info if isinstance(exc, onnx.OnnxMissing) else log.warning)(
                "%s: scoring with TensorFlow, not ONNX Runtime: %s", self.path, exc)
            return
        input_name = session.get_inputs()[0].name
        self._forward = lambda batch: session.run([self._output_name], {input_name: batch})[0]
        self.runtime = "onnx"

    def _convert(self) -> tuple[bytes, np.ndarray]:
        """The serving signature in ONNX (its output's name in the metadata) and TensorFlow's p(fake)
        on the check crops; the SavedModel is loaded and checked against its contract first."""
        if self._fn is None:
            self._load_saved_model()
        try:
            reference = self._p_fake(self._tf_forward(self.to_input(onnx.check_crops(self.input_size))))
        except (_runtime.tf.errors.OpError, TypeError, ValueError) as exc:  # the signature refuses such a batch
            raise onnx.OnnxUnavailable(f"TensorFlow cannot score the check crops ({onnx.first_line(exc)})") from None
        data = onnx.with_metadata(onnx.convert(self._fn, self._input_name), {onnx.OUTPUT_KEY: self._output_name})
        return data, reference

    def _check_scores(self, session: onnxruntime.InferenceSession) -> np.ndarray:
        """A session's p(fake) on the check crops. From the cache, without TensorFlow, the contract
        is read again (the file's name, the fingerprint, covers model.json, and it holds only
        models that passed every check of _load_saved_model) and the output named as converted."""
        if self._fn is None:
            size = session.get_inputs()[0].shape[1]
            self.contract = Contract.read(self.path / "model.json", size if isinstance(size, int) else None)
            self._output_name = session.get_modelmeta().custom_metadata_map[onnx.OUTPUT_KEY]
        batch = self.to_input(onnx.check_crops(self.input_size))
        return self._p_fake(session.run([self._output_name], {session.get_inputs()[0].name: batch})[0])

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        return self.contract.to_input(crops)

    def _p_fake(self, out: np.ndarray) -> np.ndarray:
        try:
            return self.contract.p_fake(out)
        except ValueError as exc:
            raise ModelError(f"{self.path}: {exc}") from None

    def describe(self) -> dict:
        """What a results file records about the model, so a verdict can be traced to it (and to the
        runtime that scored it, which the resume key leaves out: both give the same p(fake))."""
        return {"path": str(self.path), "fingerprint": self.fingerprint, "runtime": self.runtime,
                "contract": self.contract.to_json()}


def _fingerprint(path: Path) -> str:
    """Short hash of the graph and weights index: tells two models apart in results and resumes."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", "variables/variables.index", "model.json"):
        part = path / name
        if part.is_file():
            digest.update(part.read_bytes())
    return digest.hexdigest()[:12]
