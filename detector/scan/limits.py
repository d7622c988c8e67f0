"""What one input may cost: pixels per frame, and seconds per input.

Batches from the open web meet files made to hurt: a PNG of 1 MB that declares 20,000 × 20,000
pixels, a stream that never ends. The pixel limit is checked against what headers declare before
anything decodes (detector.scan.video). The time limit is a deadline set around one input's scan
(`deadline`): every ffmpeg it starts is killed when it passes (`kill_at_deadline`), and the
Python stages check it between frames and batches (`check`), so a hung input ends as an error
row and the batch goes on. The deadline lives in a context variable: it belongs to the thread
scanning that input, and nothing has to be passed down through every stage.
"""
from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

MAX_MEGAPIXELS = 100  # a frame or image declaring more pixels than this is refused (--max-megapixels)
INPUT_TIMEOUT = 600.0  # seconds one input may take (--input-timeout)

_deadline: ContextVar[float | None] = ContextVar("input_deadline", default=None)


class InputTimeout(Exception):
    """The input's deadline passed; the message is the stage it was in ("decoding", ...)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Give the work inside `seconds` (None: no limit) in this thread."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(default: float | None = None) -> float | None:
    """Seconds left before this thread's deadline (never below a hundredth), or `default` where
    none is set; a default is also a ceiling (ffmpeg's own probe gets at most its 120 s)."""
    end = _deadline.get()
    if end is None:
        return default
    left = max(0.01, end - time.monotonic())
    return left if default is None else min(left, default)


def check(stage: str) -> None:
    """InputTimeout(stage) where this thread's deadline has passed."""
    end = _deadline.get()
    if end is not None and time.monotonic() >= end:
        raise InputTimeout(stage)


@contextlib.contextmanager
def kill_at_deadline(proc: subprocess.Popen, stage: str) -> Iterator[None]:
    """Kill `proc` the moment this thread's deadline passes, whatever the thread is doing (blocked
    on ffmpeg's output, or still busy with the frames before); InputTimeout(stage) on leaving if so."""
    left = remaining()
    if left is None:
        yield
        return
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        with contextlib.suppress(OSError):
            proc.kill()

    timer = threading.Timer(left, kill)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if fired.is_set():
        raise InputTimeout(stage)
