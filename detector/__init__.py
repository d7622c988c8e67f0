"""deepfake-detector as a library:

    import detector
    d = detector.load()                 # the bundled model; or detector.load("path/to/model", device="cpu")
    result = d.scan("clip.mp4")         # a ScanResult; never raises for a bad input

The public names (detector.api.__all__) are fetched from detector.api on first use, so
`import detector` (and the command line's argument checking) does not pay for importing torch
and TensorFlow.
"""
from __future__ import annotations

import importlib


def __getattr__(name: str):
    api = importlib.import_module("detector.api")  # not `from detector import api`: that asks this hook again
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
