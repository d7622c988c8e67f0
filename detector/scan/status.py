"""What became of one input: the `status` column of results.csv and of every result."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A string enum, so results.csv, the JSON and the report keep the plain values."""
    OK = "ok"  # a verdict was reached
    NO_FACE = "no_face"  # readable, but no face in any sampled frame
    UNREADABLE = "unreadable"  # not a video or image ffmpeg/OpenCV can read (the error says why)
    ERROR = "error"  # an internal error (the details JSON has the traceback)

# How the `error` of two kinds of error row begins. Unlike other errors these are not scanned
# again by a rerun (only --overwrite scans them again): an input that hangs, or that ends the
# process, would cost as much on every run, or stop every run.
TIMED_OUT = "timed out"  # past --input-timeout
ENDED_PROCESS = "the scan of this file ended the process"  # found in progress by the next run
KEPT_ERRORS = (TIMED_OUT, ENDED_PROCESS)
