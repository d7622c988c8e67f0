"""The scanner: inputs → frames → faces → crop scores → verdict, one input at a time.

`extract_faces` is the shared front half (frames and crops); the trainer and the evaluator call it
too, so the crops a model is trained on are made exactly like the crops it is asked to judge.
`Scanner.scan` turns one input into a `ScanResult` and never raises for a bad input; what is
written where (results.csv, details JSON, console) is decided by `detector.output.writers`.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.scan.aggregation import DEFAULT_AGGREGATE, TrackScore, Verdict, aggregate
from detector.scan.evidence import Evidence, collect
from detector.scan.crop import Crop, crop_face
from detector.scan.faces import FaceDetector
from detector.scan.tracking import DETECT_EVERY, FaceTracker, link_tracks
from detector.scan import limits
from detector.scan.model import Model
from detector.scan.status import TIMED_OUT, Status
from detector.scan.video import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    VIDEO_EXTENSIONS,
    FFMPEG_ENV,
    Decoding,
    VideoError,
    VideoInfo,
    ffmpeg_info,
    probe,
)

if TYPE_CHECKING:
    from detector.scan.explain import Explainer

log = logging.getLogger("detector")

DETECT_CHUNK = 8  # frames per MTCNN call without tracking: bounds memory for 4K frames, keeps batches useful

# A stage-timing hook: called with a stage's name, it returns a context manager wrapped around
# that stage's work, so a benchmark times stages without patching this module.
StageTimer = Callable[[str], AbstractContextManager]
STAGES = ("probe", "decode", "detect", "crop", "model", "aggregate")


def no_timing(stage: str) -> AbstractContextManager:
    return nullcontext()


@dataclass(frozen=True)
class FaceScan:
    """Everything found in one input before the model runs."""
    info: VideoInfo
    times: list[float]  # time of each sampled frame
    crops: list[Crop]  # in frame order
    tracks: list[int]  # track id per crop


def open_input(path: Path, n_frames: int, timer: StageTimer = no_timing, fast_decode: bool = False,
               max_pixels: int = MAX_PIXELS) -> Decoding:
    """Probe the input and start decoding its sampled frames. With `fast_decode`, frames that no
    other frame refers to are not decoded (where the codec allows it), so a sample may land a
    frame or two after its target. An input declaring more than `max_pixels` a frame is refused."""
    with timer("probe"):
        return Decoding(path, n_frames, probe(path, max_pixels), skip_unreferenced=fast_decode, max_pixels=max_pixels)


def extract_faces(source: Path | Decoding, detector: FaceDetector, n_frames: int, crop_size: int,
                  timer: StageTimer = no_timing, detect_every: int = DETECT_EVERY) -> FaceScan:
    """Sample frames (from a path, or an input already opened by `open_input`), detect faces frame
    by frame as they arrive (a full pass every `detect_every`-th frame, tracking in between), crop
    them and link them into tracks."""
    decoding = source if isinstance(source, Decoding) else open_input(source, n_frames, timer)
    found: FaceScan | None = None
    with decoding:
        try:
            found = _extract(decoding, detector, detect_every, crop_size, timer)
        except VideoError:
            if decoding.expected_times is None:
                raise  # the clip itself: no other way of decoding it will do better
    info = decoding.info
    too_few = found is not None and decoding.skipped_unreferenced and len(found.times) < _expected_frames(info, n_frames)
    mistimed = decoding.expected_times is not None and (found is None or not _same_times(found.times, decoding.expected_times))
    if too_few or mistimed:
        # Too few decodable frames for the targets (a short clip, or a stream of unreferenced
        # frames), or frames dropped before decoding and the samples not the ones foreseen (an
        # edit list, say) or none at all (an ffmpeg refusing the filter): decode every frame.
        with Decoding(decoding.path, n_frames, info, drop_needless=False, max_pixels=decoding.max_pixels) as exact:
            found = _extract(exact, detector, detect_every, crop_size, timer)
    return found


def _same_times(times: list[float], expected: list[float]) -> bool:
    """ffmpeg prints times to 6 significant digits: a millisecond apart is the same frame."""
    return len(times) == len(expected) and all(abs(a - b) <= 1e-3 for a, b in zip(times, expected))


def _expected_frames(info: VideoInfo, n_frames: int) -> int:
    if info.is_image:
        return 1
    if not info.fps:
        return 0  # unknown: nothing to compare with
    return min(n_frames, int(info.duration * info.fps + 1e-6))


def _extract(decoding: Decoding, detector: FaceDetector, detect_every: int, crop_size: int,
             timer: StageTimer) -> FaceScan:
    """Without tracking (`detect_every` 1, or a detector on a GPU, where full passes are cheaper and
    give the same boxes), frames are searched DETECT_CHUNK at a time (one MTCNN call: cheaper per
    frame); with it, one by one, each frame's search starting from the last one's faces."""
    tracker = FaceTracker(detector, detect_every) if detect_every > 1 and detector.follows_faces else None
    times: list[float] = []
    crops: list[Crop] = []
    chunk: list = []

    def flush() -> None:
        with timer("detect"):
            found = [tracker(chunk[0].image, chunk[0].index)] if tracker else \
                detector.detect([f.image for f in chunk], chunk[0].index)
        with timer("crop"):
            for frame, faces in zip(chunk, found):
                crops.extend(crop_face(frame.image, face, crop_size) for face in faces)
        chunk.clear()
        limits.check("finding faces")

    frames = iter(decoding)
    while True:
        with timer("decode"):  # the wait for the next frame (ffmpeg decodes on a reader thread)
            frame = next(frames, None)
        if frame is None:
            break
        times.append(frame.time)
        chunk.append(frame)
        if tracker or len(chunk) == DETECT_CHUNK:
            flush()
    if chunk:
        flush()
    with timer("aggregate"):
        tracks = link_tracks([c.face for c in crops])
    return FaceScan(decoding.info, times, crops, tracks)


# Inputs whose frames and faces are worked on at once in scan_many, each on a thread (MTCNN on one
# torch thread) beside its own ffmpeg: on 2 cores two of them keep both busy where one left a
# core idle a quarter of the time (bench/benchmark.py: 720p folder 49 -> 62-67 clips/min).
FACE_WORKERS = 2
# Past its deadline, an input's first half stops at the next frame (and its ffmpeg is killed at
# once); one still running this long after is stuck where no check reaches (native code), and
# is left behind on its thread while the batch goes on.
STUCK_GRACE_S = 30.0


@dataclass(frozen=True)
class Settings:
    frames: int = 32
    batch_size: int = 16
    aggregate: str = DEFAULT_AGGREGATE
    threshold: float | None = None  # None: the model's own threshold
    detect_every: int = DETECT_EVERY  # a full-frame face search every N-th frame, tracking between
    fast_decode: bool = False  # skip frames no other frame needs: samples may move a frame or two
    # Bounds on one input (not in the key: they decide whether an input is scanned, not its verdict)
    max_pixels: int = MAX_PIXELS  # an image or frame declaring more is refused, undecoded
    input_timeout: float | None = limits.INPUT_TIMEOUT  # seconds; past them the input is an error row

    def key(self, model: Model) -> str:
        """Everything that changes a verdict: a row made with other settings is scanned again."""
        return (f"model={model.fingerprint};frames={self.frames};aggregate={self.aggregate};"
                f"threshold={self.threshold_for(model):g}"  # the shortcuts only when on: older rows still resume
                + (f";detect_every={self.detect_every}" if self.detect_every != 1 else "")
                + (";fast_decode" if self.fast_decode else ""))

    def threshold_for(self, model: Model) -> float:
        return model.contract.threshold if self.threshold is None else self.threshold


@dataclass(frozen=True)
class FaceResult:
    """One detected face in one sampled frame, with the model's score for its crop."""
    box: tuple[float, ...]  # x1, y1, x2, y2 in frame pixels
    detector_prob: float
    track: int
    p_fake: float


@dataclass(frozen=True)
class FrameResult:
    index: int
    time: float | None  # seconds; None where the stream gave no timestamp
    faces: tuple[FaceResult, ...]


@dataclass(frozen=True)
class ScanResult:
    """What scanning one input found. The verdict is set only when the status is ok; `error` says
    why when not."""
    path: str
    status: Status
    error: str = ""
    frames: tuple[FrameResult, ...] = ()  # every sampled frame, with its faces
    verdict: Verdict | None = None
    video: VideoInfo | None = None
    seconds: float = 0.0
    size: int | None = None
    mtime_ns: int | None = None
    settings: Settings = Settings()
    settings_key: str = ""  # what the resume check compares (Settings.key)
    model: Mapping = field(default_factory=dict)  # Model.describe()
    ffmpeg: Mapping = field(default_factory=dict)  # the ffmpeg that decoded it: path and version (video.Ffmpeg)
    traceback: str = ""  # for an internal error
    # thumbnails (and with explain, heat-maps) for the HTML report; not in results.csv or the JSON
    evidence: Evidence = field(default=Evidence(), repr=False, compare=False)

    @property
    def label(self) -> str:
        """FAKE or REAL; empty without a verdict."""
        return self.verdict.label if self.verdict else ""

    @property
    def p_fake(self) -> float | None:
        return self.verdict.p_fake if self.verdict else None

    @property
    def p_raw(self) -> float | None:
        """p_fake before the model's calibration (equal to p_fake without one)."""
        return self.verdict.p_raw if self.verdict else None

    @property
    def tracks(self) -> tuple[TrackScore, ...]:
        """Every face track, passers-by included."""
        return tuple(self.verdict.tracks) if self.verdict else ()

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def n_faces(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)


class Scanner:
    """A loaded model and face detector with fixed settings; `detector.load()` makes one."""

    def __init__(self, model: Model, detector: FaceDetector, settings: Settings = Settings(),
                 timer: StageTimer = no_timing):
        self.model, self.detector, self.settings, self.timer = model, detector, settings, timer
        ffmpeg = ffmpeg_info()
        self.ffmpeg = asdict(ffmpeg)
        # Rows made by an ffmpeg other than the pinned one carry its version, so that switching
        # between the two scans them again (frames, and so p_fake, depend on the build).
        self.settings_key = settings.key(model) + (f";ffmpeg={ffmpeg.version}" if os.environ.get(FFMPEG_ENV) else "")
        self._explainer: Explainer | None = None

    @property
    def explainer(self) -> Explainer:
        """The model's heat-mapper, made on first use (the Keras rebuild for Grad-CAM is slow)."""
        if self._explainer is None:
            from detector.scan.explain import Explainer
            self._explainer = Explainer(self.model)
        return self._explainer

    def scan(self, path: str | os.PathLike, explain: bool = False) -> ScanResult:
        """One input's result; never raises for a bad input (Ctrl-C still stops it). With `explain`
        its evidence holds heat-maps of the most suspicious crops."""
        return self._back(self._front(Path(os.path.abspath(path))), explain)

    def scan_many(self, paths: Iterable[str | os.PathLike], explain: bool = False) -> Iterator[ScanResult]:
        """Each input's result as it finishes, in input order; never raises for a bad input.

        FACE_WORKERS + 1 inputs are in flight: one is scored (here) while the next ones are decoded
        (ffmpeg, each in its own process) and their faces found (each on a thread), so the cores
        never wait for one input's slowest stage. An input's first half stuck past its deadline
        (settings.input_timeout) is given up on (an error row) and the batch goes on."""
        paths = (Path(os.path.abspath(path)) for path in paths)
        faces = _FaceWorkers(self._front, FACE_WORKERS)
        window: deque[_Job] = deque()
        path = next(paths, None)
        try:
            while True:
                while path is not None and len(window) < FACE_WORKERS + 1:
                    window.append(faces.submit(path))
                    path = next(paths, None)
                if not window:
                    break
                front = self._await(window[0], faces)
                window.popleft()
                yield self._back(front, explain)
        finally:  # also when stopped early: no ffmpeg is left decoding an input nobody will read
            faces.close(window, self._stuck_after())

    def _stuck_after(self) -> float | None:
        timeout = self.settings.input_timeout
        return None if timeout is None else timeout + STUCK_GRACE_S

    def _await(self, job: _Job, faces: _FaceWorkers) -> _Front:
        """The job's first half once done; where it is stuck past its deadline, an error in its place
        (its thread is left behind and another takes its place)."""
        limit = self._stuck_after()
        while not job.done.wait(None if limit is None else 0.5):
            if job.started is not None and time.monotonic() - job.started > limit:
                faces.replace_stuck(job)
                found = dict(_stat(job.path), status=Status.ERROR,
                             error=self._timed_out("decoding or finding faces (stuck; left running)"))
                return _Front(job.path, time.perf_counter() - limit, found, None)
        if job.error is not None:
            raise job.error
        return job.front

    def _timed_out(self, stage: str) -> str:
        return f"{TIMED_OUT} after {self.settings.input_timeout:g} s (--input-timeout) while {stage}"

    def _open(self, path: Path) -> Decoding:
        return open_input(path, self.settings.frames, self.timer, self.settings.fast_decode, self.settings.max_pixels)

    def _front(self, path: Path) -> _Front:
        """The first half of a scan: the input's frames and faces, or why they could not be had;
        within the input's deadline."""
        started = time.perf_counter()
        found: dict = _stat(path)
        try:
            with limits.deadline(self.settings.input_timeout):
                faces = extract_faces(self._open(path), self.detector, self.settings.frames, self.model.input_size,
                                      self.timer, self.settings.detect_every)
            return _Front(path, started, found, faces)
        except VideoError as exc:
            found.update(status=Status.UNREADABLE, error=str(exc))
        except limits.InputTimeout as exc:
            found.update(status=Status.ERROR, error=self._timed_out(str(exc)))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad file never stops a batch: record it and go on
            found.update(_failure(path, exc))
        return _Front(path, started, found, None)

    def _back(self, front: _Front, explain: bool) -> ScanResult:
        """The second half: score the crops and reach the verdict, in what is left of the input's
        time (the wait for its turn does not count)."""
        found = dict(front.found)
        if front.faces is not None:
            timeout = self.settings.input_timeout
            try:
                with limits.deadline(None if timeout is None else timeout - front.spent):
                    found.update(self._score(front.faces, explain))
            except limits.InputTimeout as exc:
                found.update(status=Status.ERROR, error=self._timed_out(str(exc)))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # one bad file never stops a batch: record it and go on
                found.update(_failure(front.path, exc))
        return ScanResult(path=str(front.path), seconds=time.perf_counter() - front.started, settings=self.settings,
                          settings_key=self.settings_key, model=self.model.describe(), ffmpeg=self.ffmpeg,
                          **found)

    def _score(self, found: FaceScan, explain: bool) -> dict:
        with self.timer("model"):
            scores = self.model.predict(np.stack([c.image for c in found.crops]), self.settings.batch_size) \
                if found.crops else np.zeros(0, np.float32)
        with self.timer("aggregate"):
            frames = _frame_results(found, scores)
            if not found.crops:
                return dict(status=Status.NO_FACE, error=f"no face found in {len(found.times)} sampled frame(s)",
                            frames=frames, video=found.info)
            verdict = aggregate(scores, found.tracks, len(found.times), self.settings.threshold_for(self.model),
                                self.settings.aggregate, self.model.contract.calibration,
                                [c.face.side for c in found.crops])
        evidence = collect([c.image for c in found.crops], scores, found.tracks, self.explainer if explain else None)
        return dict(status=Status.OK, frames=frames, verdict=verdict, video=found.info, evidence=evidence)


def _failure(path: Path, exc: Exception) -> dict:
    """The result fields of an internal error (call inside its `except`, for the traceback)."""
    trace = traceback.format_exc()
    log.debug("%s failed:\n%s", path, trace)
    return dict(status=Status.ERROR, error=f"{type(exc).__name__}: {exc}", traceback=trace)


@dataclass(frozen=True)
class _Front:
    """An input after the first half of its scan: its faces, or (faces None) the failed result."""
    path: Path
    started: float
    found: dict  # size and mtime_ns; status and error where it failed
    faces: FaceScan | None
    spent: float = field(init=False)  # seconds the first half took

    def __post_init__(self) -> None:
        object.__setattr__(self, "spent", time.perf_counter() - self.started)


def _stat(path: Path) -> dict:
    """The input's size and mtime_ns (none for a missing file): a row's resume key."""
    try:
        stat = path.stat()
        return dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    except OSError:
        return {}


class _Job:
    """One input's first half, queued for a face worker."""

    def __init__(self, path: Path):
        self.path = path
        self.started: float | None = None  # time.monotonic() when a worker took it
        self.worker: threading.Thread | None = None
        self.done = threading.Event()
        self.front: _Front | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def run(self, work: Callable[[Path], _Front]) -> None:
        try:
            if not self.cancelled:
                self.worker, self.started = threading.current_thread(), time.monotonic()
                self.front = work(self.path)
        except BaseException as exc:  # handed to the thread waiting for it
            self.error = exc
        finally:
            self.done.set()


class _FaceWorkers:
    """scan_many's threads for first halves: `workers` of them take queued jobs in order. They are
    daemon threads, so one stuck in native code (where no deadline check reaches) never holds up
    the batch or the end of the process: `replace_stuck` starts another in its place."""

    def __init__(self, work: Callable[[Path], _Front], workers: int):
        self.work, self.jobs, self.threads = work, queue.SimpleQueue(), []
        for _ in range(workers):
            self._start()

    def _start(self) -> None:
        self.threads.append(threading.Thread(target=self._serve, daemon=True, name="faces"))
        self.threads[-1].start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            job.run(self.work)

    def submit(self, path: Path) -> _Job:
        job = _Job(path)
        self.jobs.put(job)
        return job

    def replace_stuck(self, job: _Job) -> None:
        self.threads.remove(job.worker)  # it takes no more jobs, and is not waited for
        self._start()

    def close(self, pending: Iterable[_Job], stuck_after: float | None) -> None:
        """Drop the jobs not started, and end the threads once done with those running (waiting up
        to `stuck_after` seconds for each: daemon threads busy in torch at exit can abort it)."""
        for job in pending:
            job.cancelled = True
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(stuck_after)


def _frame_results(found: FaceScan, scores: np.ndarray) -> tuple[FrameResult, ...]:
    faces: list[list[FaceResult]] = [[] for _ in found.times]
    for crop, track, score in zip(found.crops, found.tracks, scores):
        faces[crop.face.frame].append(FaceResult(tuple(round(v, 3) for v in crop.face.box),
                                                 round(crop.face.prob, 4), track, round(float(score), 6)))
    return tuple(FrameResult(i, None if np.isnan(t) else round(t, 4), tuple(f))
                 for i, (t, f) in enumerate(zip(found.times, faces)))


@dataclass(frozen=True)
class Inputs:
    """What --input names: the files to scan, and files in its folders skipped for their extension."""
    paths: tuple[Path, ...]
    skipped: tuple[Path, ...] = ()


def find_inputs(source: Path, exclude: Path | None = None) -> Inputs:
    """Inputs named by --input: a file, a folder (recursive, sorted), or a .txt list of paths.

    Folders are walked without following links, so a symlink loop is listed (and reported as
    unreadable) rather than followed forever, and a link to a folder is not entered; a file named
    only by an extension (".mp4") is an input too. The `exclude` folder (the results, whose report
    holds JPEGs) is not walked. List entries are relative to the list's folder.
    """
    if source.is_dir():
        found, skipped = [], []
        skip = exclude and os.path.abspath(exclude)
        for folder, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if os.path.abspath(Path(folder, d)) != skip)
            for name in sorted(files):
                wanted = (Path(name).suffix or name).lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS  # ".mp4" too
                (found if wanted else skipped).append(Path(os.path.abspath(Path(folder, name))))
        return Inputs(tuple(found), tuple(skipped))
    if source.suffix.lower() == ".txt":
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return Inputs(tuple(Path(os.path.abspath(source.parent / entry)) for entry in entries))
    return Inputs((Path(os.path.abspath(source)),))
