"""Writers: each output made from a `ScanResult` — the results.csv row, the details JSON, the
console line — is one small function chosen by name (`get_writer("json")`), so every output
says the same thing and a new one is one function."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from detector.scan.scanner import ScanResult
from detector.output.results import Row
from detector.scan.status import Status


def result_row(result: ScanResult) -> Row:
    """The results.csv row (its `details` column is filled in when the JSON is written)."""
    return Row(path=result.path, status=result.status, label=result.label, p_fake=result.p_fake,
               n_frames=result.n_frames, n_faces=result.n_faces, n_tracks=result.n_tracks,
               seconds=result.seconds, error=result.error, size=result.size, mtime_ns=result.mtime_ns,
               settings=result.settings_key)


def result_details(result: ScanResult) -> dict:
    """The details JSON: model, ffmpeg, video, every frame's faces and scores, the verdict and its reason."""
    details: dict = {"input": result.path, "model": dict(result.model), "ffmpeg": dict(result.ffmpeg),
                     "settings": asdict(result.settings)}
    if result.video is not None:
        details["video"] = asdict(result.video)
        details["frames"] = [asdict(frame) for frame in result.frames]
    if result.verdict is not None:
        details["verdict"] = asdict(result.verdict)
    if result.traceback:
        details["traceback"] = result.traceback
    details.update(status=result.status, error=result.error, seconds=round(result.seconds, 3))
    return details


def result_line(result: ScanResult) -> str:
    """`FAKE  p_fake=0.913  clip.mp4  (32 faces, 1 track)` or `unreadable  clip.mp4  (why)`."""
    if result.status == Status.OK:
        tracks = f"{result.n_tracks} track{'s' if result.n_tracks != 1 else ''}"
        return f"{result.label:<4}  p_fake={result.p_fake:.3f}  {result.path}  ({result.n_faces} faces, {tracks})"
    return f"{result.status}  {result.path}  ({result.error})"


WRITERS: dict[str, Callable[[ScanResult], object]] = {"row": result_row, "json": result_details, "line": result_line}


def get_writer(name: str) -> Callable[[ScanResult], object]:
    """The writer for one output: "row" (a results.csv Row), "json" (the details, a dict ready for
    json.dumps) or "line" (the console line)."""
    try:
        return WRITERS[name]
    except KeyError:
        raise ValueError(f"unknown writer {name!r}; choose from {', '.join(WRITERS)}") from None
