"""The clips a check runs over: those a labelled manifest (.csv) lists, or the videos in a folder or
list file, as the scanner would find them."""
from __future__ import annotations

from pathlib import Path


def clip_paths(source: Path, limit: int | None = None) -> list[Path]:
    from detector.scan.scanner import find_inputs
    from detector.data.datasets import read_dataset

    if source.suffix.lower() == ".csv":
        paths = [item.path for item in read_dataset(source)]
    else:
        paths = list(find_inputs(source).paths)
    return paths[:limit]
