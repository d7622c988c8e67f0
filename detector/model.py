"""Stage 3 — model: score face crops with any TensorFlow SavedModel through its serving signature.

`model.json` beside the SavedModel states the contract (input size and range, sigmoid or
softmax and which index is fake, default threshold). Without one we assume the contract of the
model this product descends from: 224×224 RGB in [0,1], 2-class softmax, index 1 = fake.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from detector.aggregation import Calibration
from detector.runtime import tf

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


class ModelError(Exception):
    """The model is missing, broken or does not match its contract; the message names the path."""


@dataclass(frozen=True)
class Contract:
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
    """A loaded SavedModel plus its contract; `predict` turns uint8 crops into p(fake)."""

    def __init__(self, path: Path, device: str = "cpu"):
        self.path = Path(path).resolve()
        if not (self.path / "saved_model.pb").is_file():
            raise ModelError(f"no SavedModel at {self.path} (expected saved_model.pb and variables/ inside)")
        try:
            with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
                self._loaded = tf.saved_model.load(str(self.path))
            self._fn = self._loaded.signatures["serving_default"]
        except (KeyError, ValueError, OSError, tf.errors.OpError) as exc:
            raise ModelError(f"cannot load the SavedModel at {self.path}: {str(exc).splitlines()[0]}") from None
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: the serving signature must take one image input, it takes {sorted(inputs)}")
        (self._input_name, spec), = inputs.items()
        shape = spec.shape.as_list()
        if len(shape) != 4 or shape[-1] not in (3, None):
            raise ModelError(f"{self.path}: the serving input must be N×H×W×3 images, it is {shape}")
        self.contract = Contract.read(self.path / "model.json", shape[1])
        if shape[1] is not None and shape[1] != self.contract.input_size:
            raise ModelError(f"{self.path}: model.json says input_size {self.contract.input_size} "
                             f"but the model takes {shape[1]}×{shape[2]} images")
        self._check_outputs()
        self.device = device
        self.fingerprint = _fingerprint(self.path)

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
            out = self._fn(**{self._input_name: tf.constant(self.to_input(crops[start:start + batch_size]))})
            scores.append(self._p_fake(np.asarray(next(iter(out.values())))))
        return np.concatenate(scores)

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops as the model takes them: float32 scaled to the contract's input range."""
        low, high = self.contract.input_range
        return crops.astype(np.float32) * ((high - low) / 255.0) + low

    def _p_fake(self, out: np.ndarray) -> np.ndarray:
        out = out.reshape(len(out), -1)
        if self.contract.output == "sigmoid":
            if out.shape[1] != 1:
                raise ModelError(f"{self.path}: contract says sigmoid but the model gives {out.shape[1]} outputs")
            return out[:, 0].astype(np.float32)
        if out.shape[1] <= self.contract.fake_index:
            raise ModelError(f"{self.path}: the model gives {out.shape[1]} outputs, fake index is {self.contract.fake_index}")
        return out[:, self.contract.fake_index].astype(np.float32)

    def describe(self) -> dict:
        """What a results file records about the model, so a verdict can be traced to it."""
        return {"path": str(self.path), "fingerprint": self.fingerprint, "contract": self.contract.to_json()}


def _fingerprint(path: Path) -> str:
    """Short hash of the graph and weights index: tells two models apart in results and resumes."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", "variables/variables.index", "model.json"):
        part = path / name
        if part.is_file():
            digest.update(part.read_bytes())
    return digest.hexdigest()[:12]
