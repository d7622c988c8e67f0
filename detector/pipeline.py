"""The scanner: inputs → frames → faces → crop scores → verdict → results, one input at a time.

`extract_faces` is the shared front half (frames and crops); the trainer and the evaluator call it
too, so the crops a model is trained on are made exactly like the crops it is asked to judge.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.aggregation import aggregate
from detector.faces import Crop, FaceDetector, crop_face, link_tracks
from detector.model import Model
from detector.results import ResultsFolder, Row
from detector.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoError, VideoInfo, probe, sample_frames

log = logging.getLogger("detector")

DETECT_CHUNK = 8  # frames detected per MTCNN call: bounds memory for 4K frames, keeps batches useful
EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class FaceScan:
    """Everything found in one input before the model runs."""
    info: VideoInfo
    times: list[float]  # time of each sampled frame
    crops: list[Crop]  # in frame order
    tracks: list[int]  # track id per crop


def extract_faces(path: Path, detector: FaceDetector, n_frames: int, crop_size: int) -> FaceScan:
    """Sample frames, detect faces in chunks as frames arrive, crop them and link them into tracks."""
    info = probe(path)
    times: list[float] = []
    crops: list[Crop] = []
    chunk = []

    def flush() -> None:
        for frame, faces in zip(chunk, detector.detect([f.image for f in chunk], chunk[0].index)):
            crops.extend(crop_face(frame.image, face, crop_size) for face in faces)
        chunk.clear()

    for frame in sample_frames(path, n_frames, info):
        times.append(frame.time)
        chunk.append(frame)
        if len(chunk) == DETECT_CHUNK:
            flush()
    if chunk:
        flush()
    return FaceScan(info, times, crops, link_tracks([c.face for c in crops]))


@dataclass
class Settings:
    frames: int = 32
    batch_size: int = 16
    aggregate: str = "track-max"
    threshold: float | None = None  # None: the model's own threshold

    def key(self, model: Model) -> str:
        """Everything that changes a verdict: a row made with other settings is scanned again."""
        return f"model={model.fingerprint};frames={self.frames};aggregate={self.aggregate};threshold={self.threshold_for(model):g}"

    def threshold_for(self, model: Model) -> float:
        return model.contract.threshold if self.threshold is None else self.threshold


class Scanner:
    def __init__(self, model: Model, detector: FaceDetector, settings: Settings):
        self.model, self.detector, self.settings = model, detector, settings

    def scan(self, path: Path) -> tuple[Row, dict]:
        """One input's results row and details; never raises for a bad input."""
        started = time.perf_counter()
        row = Row(path=str(path), status="error")
        details: dict = {"input": str(path), "model": self.model.describe(), "settings": asdict(self.settings)}
        try:
            stat = path.stat()
            row.size, row.mtime_ns = stat.st_size, stat.st_mtime_ns
        except OSError:
            pass
        try:
            found = extract_faces(path, self.detector, self.settings.frames, self.model.input_size)
            scores = self.model.predict(np.stack([c.image for c in found.crops]), self.settings.batch_size) \
                if found.crops else np.zeros(0, np.float32)
            row.n_frames, row.n_faces = len(found.times), len(found.crops)
            row.n_tracks = len(set(found.tracks))
            details["video"] = asdict(found.info)
            details["frames"] = _frames_detail(found, scores)
            if found.crops:
                verdict = aggregate(scores, found.tracks, len(found.times), self.settings.threshold_for(self.model),
                                    self.settings.aggregate, self.model.contract.calibration)
                row.status, row.label, row.p_fake = "ok", verdict.label, verdict.p_fake
                details["verdict"] = asdict(verdict)
            else:
                row.status = "no_face"
                row.error = f"no face found in {len(found.times)} sampled frame(s)"
        except VideoError as exc:
            row.status, row.error = "unreadable", str(exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad file never stops a batch: record it and go on
            row.status, row.error = "error", f"{type(exc).__name__}: {exc}"
            details["traceback"] = traceback.format_exc()
            log.debug("%s failed:\n%s", path, details["traceback"])
        row.seconds = time.perf_counter() - started
        details.update(status=row.status, error=row.error, seconds=round(row.seconds, 3))
        return row, details


def _frames_detail(found: FaceScan, scores: np.ndarray) -> list[dict]:
    frames = [{"index": i, "time": None if np.isnan(t) else round(t, 4), "faces": []} for i, t in enumerate(found.times)]
    for crop, track, score in zip(found.crops, found.tracks, scores):
        frames[crop.face.frame]["faces"].append({
            "box": [round(v, 3) for v in crop.face.box], "detector_prob": round(crop.face.prob, 4),
            "track": track, "p_fake": round(float(score), 6),
        })
    return frames


def find_inputs(source: Path) -> list[Path]:
    """Inputs named by --input: a file, a folder (recursive, sorted), or a .txt list of paths.

    Folders are walked without following links, so a symlink loop is listed (and reported as
    unreadable) rather than followed forever. List entries are relative to the list's folder.
    """
    if source.is_dir():
        found = []
        for folder, dirs, files in os.walk(source):
            dirs.sort()
            found += [Path(folder, name) for name in sorted(files)
                      if Path(name).suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS]
        return [Path(os.path.abspath(p)) for p in found]
    if source.suffix.lower() == ".txt":
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return [Path(os.path.abspath(source.parent / entry)) for entry in entries]
    return [Path(os.path.abspath(source))]


def verdict_line(row: Row) -> str:
    """`FAKE  p=0.913  clip.mp4  (32 faces, 1 track)` or `unreadable  clip.mp4  (why)`."""
    if row.status == "ok":
        tracks = f"{row.n_tracks} track{'s' if row.n_tracks != 1 else ''}"
        return f"{row.label:<4}  p_fake={row.p_fake:.3f}  {row.path}  ({row.n_faces} faces, {tracks})"
    return f"{row.status}  {row.path}  ({row.error})"


@dataclass
class BatchSummary:
    statuses: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    skipped: int = 0
    scanned: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def line(self) -> str:
        parts = [f"{self.labels[k]} {k}" for k in ("FAKE", "REAL")]
        parts += [f"{self.statuses[k]} {k}" for k in ("no_face", "unreadable", "error")]
        per = f" ({self.seconds / self.scanned:.1f} s per input)" if self.scanned else ""
        head = "Interrupted after" if self.interrupted else "Done:"
        return (f"{head} {self.scanned} scanned in {self.seconds:.1f} s{per}, {self.skipped} already in results — "
                + ", ".join(parts))

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_UNREADABLE if self.statuses["unreadable"] or self.statuses["error"] else EXIT_OK


def run_batch(scanner: Scanner, inputs: list[Path], results: ResultsFolder, overwrite: bool = False,
              progress: bool = True) -> BatchSummary:
    """Scan each input into results; what finished is kept if the batch is interrupted."""
    summary = BatchSummary()
    started = time.perf_counter()
    settings_key = scanner.settings.key(scanner.model)
    bar = tqdm(inputs, unit="input", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for path in bar:
            bar.set_postfix_str(path.name[-40:], refresh=False)
            try:
                stat = path.stat()
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:
                size = mtime = None
            earlier = None if overwrite else results.done(str(path), size, mtime, settings_key)
            if earlier is not None:
                summary.skipped += 1
                row = earlier
            else:
                row, details = scanner.scan(path)
                row.settings = settings_key
                results.write(row, details)
                summary.scanned += 1
                if progress:  # one line per input for the person watching; scripts read results.csv
                    bar.write(verdict_line(row), file=sys.stdout)
            summary.statuses[row.status] += 1
            if row.label:
                summary.labels[row.label] += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - started
    return summary
