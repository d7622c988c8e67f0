"""What became of one input: the `status` column of results.csv and of every result."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A string enum, so results.csv, the JSON and the report keep the plain values."""
    OK = "ok"  # a verdict was reached
    NO_FACE = "no_face"  # readable, but no face in any sampled frame
    UNREADABLE = "unreadable"  # not a video or image ffmpeg/OpenCV can read (the error says why)
    ERROR = "error"  # an internal error (the details JSON has the traceback)
