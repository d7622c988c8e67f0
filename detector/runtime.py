"""The one place that imports TensorFlow: torch (and torchvision) first, TF's start-up chatter
hidden, the device choice shared by the scanner and the trainer, and the command line that data
cards and reports record.

`import tensorflow` followed by torchvision or facenet-pytorch segfaults when triton is
installed, so every module gets TensorFlow and tf_keras from here, never directly. They are
imported on first use (`from detector.runtime import tf`, or `runtime.tf`), and torch only with
them or where a GPU may be there to ask about: a CPU scan whose networks run from their cached ONNX
conversions loads neither (about 1 GB and seconds of start-up).
"""
from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path



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


_cpu_only = False  # resolve_device chose the CPU: TensorFlow, once imported, must not take a GPU


def __getattr__(name: str):
    """`tf` and `keras`, imported the first time anything asks for them."""
    if name not in ("tf", "keras"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import torch  # noqa: F401
    import torchvision  # noqa: F401  — it loads triton; triton loaded after tensorflow segfaults too

    with quiet_native_stderr():
        import tensorflow
        import tf_keras

        if _cpu_only:
            tensorflow.config.set_visible_devices([], "GPU")
    globals().update(tf=tensorflow, keras=tf_keras)
    return globals()[name]


def few_malloc_arenas(arenas: int = 2) -> None:
    """Have glibc's malloc keep at most `arenas` heaps. By default each thread that allocates may get
    one of its own (up to 8 per core), and the scanner's decoding, face and scoring threads each
    free large frames and crops their own heaps then hold on to: a batch's peak RSS grew by about
    0.15 GB more that way (bench/benchmark.py --memory). No-op off glibc; $MALLOC_ARENA_MAX wins."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(-8, arenas)  # M_ARENA_MAX


def cpu_cores() -> int:
    """The cores this process may use (its CPU affinity, e.g. a container's share), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class DeviceError(Exception):
    """A GPU was asked for where TensorFlow and torch do not both see one."""


def resolve_device(name: str = "auto") -> str:
    """'cpu' or 'gpu' ('gpu' only where torch and TensorFlow both see one). On cpu, TensorFlow is
    kept off any GPU so torch and TF never fight over it; where torch sees no GPU, TensorFlow is
    not even imported to ask."""
    global _cpu_only
    if name == "auto":
        name = "gpu" if _gpu_driver() and _torch_sees_gpu() and _tf_sees_gpu() else "cpu"
    if name == "gpu" and not (_torch_sees_gpu() and _tf_sees_gpu()):
        raise DeviceError("--device gpu: TensorFlow and torch do not both see a GPU on this machine")
    if name == "cpu":
        _cpu_only = True
        if "tf" in globals():  # already imported: too late for __getattr__ to hide the GPUs
            globals()["tf"].config.set_visible_devices([], "GPU")
    return name


def _gpu_driver() -> bool:
    """Whether an NVIDIA driver shows a device here (/dev/nvidia0…): where none does, "auto" is the
    CPU without importing torch to ask (seconds of start-up for every call of a shell loop)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _torch_sees_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _tf_sees_gpu() -> bool:
    with quiet_native_stderr():
        return bool(__getattr__("tf").config.list_physical_devices("GPU"))


__all__ = ["DeviceError", "cpu_cores", "few_malloc_arenas", "keras", "quiet_native_stderr", "resolve_device", "tf"]  # noqa: F822 (tf, keras: __getattr__)


def command_line(command: str, argv: Sequence[str] | None = None) -> str:
    """`deepfake-detector COMMAND ARGS…` quoted for a shell, as a run's data card records it
    (argv: the command's own arguments; None: this process's)."""
    return f"deepfake-detector {command} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

