"""The one place that imports TensorFlow: torch (and torchvision) first, TF's start-up chatter
hidden, and the device choice shared by the scanner and the trainer.

`import tensorflow` followed by torchvision or facenet-pytorch segfaults when triton is
installed, so every module gets TensorFlow and tf_keras from here, never directly.
"""
from __future__ import annotations

import contextlib
import os

import torch
import torchvision  # noqa: F401  — it loads triton; triton loaded after tensorflow segfaults too


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide TensorFlow's C++ start-up chatter (oneDNN, CUDA probing), which no setting silences;
    Python errors still surface because they are raised after the descriptor is restored.
    Set DETECTOR_TF_LOGS=1 to see it."""
    if os.environ.get("DETECTOR_TF_LOGS"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402


class DeviceError(Exception):
    """A GPU was asked for where TensorFlow and torch do not both see one."""


def resolve_device(name: str = "auto") -> str:
    """'cpu' or 'gpu'. On cpu, TensorFlow is kept off any GPU so torch and TF never fight over it."""
    with quiet_native_stderr():
        gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "gpu" if gpus and torch.cuda.is_available() else "cpu"
    if name == "gpu" and not (gpus and torch.cuda.is_available()):
        raise DeviceError("--device gpu: TensorFlow and torch do not both see a GPU on this machine")
    if name == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    return name


__all__ = ["DeviceError", "keras", "quiet_native_stderr", "resolve_device", "tf"]
