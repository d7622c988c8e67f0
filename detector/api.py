"""The public library API, in the spirit of `whisper.load_model(...)` / `model.transcribe(...)`:

    import detector
    d = detector.load()                 # the bundled model, or detector.load("my_model/", device="cpu")
    result = d.scan("clip.mp4")         # a ScanResult; never raises for a bad input
    for result in d.scan_many(paths):   # a generator, in input order
        ...

`scan_batch` adds a results folder: resume, then one row and one details JSON per input, and
with `report=True` the HTML report (RESULTS/report.html) updated as each input finishes.
Nothing here prints; the command line (detector.cli) does that.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from detector.scan.aggregation import DEFAULT_AGGREGATE
from detector.scan.faces import FaceDetector
from detector.scan.limits import INPUT_TIMEOUT, MAX_MEGAPIXELS
from detector.scan.tracking import DETECT_EVERY
from detector.scan.model import DEFAULT_MODEL_DIR, Model, ModelError
from detector.scan.scanner import STAGES, ScanResult, Scanner, Settings, StageTimer, no_timing
from detector.scan.status import ENDED_PROCESS, Status
from detector.scan.video import FfmpegError, ffmpeg_info
from detector.output.html_report import HtmlReport
from detector.output.results import InProgress, Mark, ResultsError, ResultsFolder, Row, writing
from detector.runtime import DeviceError, few_malloc_arenas, resolve_device
from detector.output.writers import get_writer

__all__ = ["STAGES", "BatchItem", "DeviceError", "FfmpegError", "HtmlReport", "ModelError", "NoDefaultModel",
           "ResultsError", "ResultsFolder", "ScanResult", "Scanner", "Settings", "Status", "get_writer", "load",
           "scan_batch"]


class NoDefaultModel(ModelError):
    """No model was named and none is installed at models/default."""

    def __init__(self, path: Path):
        super().__init__(f"no model installed at {path}")
        self.path = path


def load(model: str | os.PathLike | None = None, device: str = "auto", *, runtime: str = "auto", frames: int = 32,
         batch_size: int = 16, aggregate: str = DEFAULT_AGGREGATE, threshold: float | None = None,
         detect_every: int = DETECT_EVERY, fast_decode: bool = False, max_megapixels: float = MAX_MEGAPIXELS,
         input_timeout: float | None = INPUT_TIMEOUT, timer: StageTimer = no_timing) -> Scanner:
    """A ready scanner: the model (default: the bundled one) and the face detector on `device`
    ("auto", "cpu" or "gpu"). Raises ModelError, DeviceError or FfmpegError; `timer` is the stage-timing hook.
    `runtime` runs the networks in "onnx" (ONNX Runtime, faster on a CPU: bench/runtime_check.py,
    and no TensorFlow or torch to import), "tensorflow" (the model in TensorFlow, MTCNN in torch) or
    "auto": ONNX Runtime for each network where it is installed and matches its framework within
    1e-4, else the framework.
    `detect_every` (default 8) searches whole frames for faces on every 8th sampled frame and only
    near the faces found in between (the same boxes; 1: whole frames every time); `fast_decode=True`
    skips decoding frames no other frame needs even where sampled, which moves samples and p_fake
    (docs/speed.md). An input declaring more than `max_megapixels` per frame is refused before it is
    decoded (unreadable); one taking longer than `input_timeout` seconds (None: no limit) is stopped
    (an error)."""
    ffmpeg_info()  # a DETECTOR_FFMPEG that does not run fails here, before the model loads
    device = resolve_device(device)
    few_malloc_arenas()  # before the scanner's threads start
    if model is None:
        if not (DEFAULT_MODEL_DIR / "saved_model.pb").exists():
            raise NoDefaultModel(DEFAULT_MODEL_DIR)
        model = DEFAULT_MODEL_DIR
    settings = Settings(frames=frames, batch_size=batch_size, aggregate=aggregate, threshold=threshold,
                        detect_every=detect_every, fast_decode=fast_decode,
                        max_pixels=round(max_megapixels * 1_000_000), input_timeout=input_timeout)
    faces = FaceDetector("cuda" if device == "gpu" else "cpu", runtime="torch" if runtime == "tensorflow" else runtime)
    return Scanner(Model(Path(model), device, runtime), faces, settings, timer)


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch: its row in results.csv, and the scan behind it (None when the row
    was already there and the input was not scanned again)."""
    path: Path
    row: Row
    result: ScanResult | None

    @property
    def skipped(self) -> bool:
        return self.result is None


def scan_batch(scanner: Scanner, inputs: Iterable[str | os.PathLike], results: ResultsFolder, overwrite: bool = False,
               report: bool = False, explain: bool = False,
               waiting: Callable[[str], None] | None = None) -> Iterator[BatchItem]:
    """Scan each input into the results folder, in order, skipping inputs already there with the
    same file and settings (unless `overwrite`). results.csv is compacted once when the batch ends,
    also when it is interrupted. `report` keeps RESULTS/report.html up to date as inputs finish;
    `explain` adds heat-maps of the most suspicious crops to it.

    The batch is the folder's one writer (ResultsFolder.locked) from its first input to its end:
    where another run is writing it, `waiting` is given a line saying so and the batch waits, then
    skips what that run did. A write that fails (full disk, read-only folder) raises ResultsError
    and ends the batch; the rows before it stay intact, and a rerun resumes.

    The inputs to scan go to `scanner.scan_many` as one list, so a scanner may work ahead (decode
    the next input) or spread them over workers (Ray); results still arrive, and are written, in
    input order, by this one writer.

    Each input the scanner takes in hand is marked in RESULTS/.scanning until its row is written
    (InProgress). A batch that finds marks left by a run that died scans each of those inputs by
    itself, nothing else in flight; where the process dies again, the one input then in hand is
    the culprit, and the next batch records it as an error that ended the process, kept on reruns
    (only `overwrite` scans it again). Two deaths, not one: a run killed from outside (kill -9, a
    reboot) or stopped by a folder turned read-only blames no input. A scanner whose `in_process`
    is False (Ray's: its workers' deaths are its own to handle) is not marked for."""
    to_row, to_details = get_writer("row"), get_writer("json")
    paths = list(dict.fromkeys(Path(os.path.abspath(p)) for p in inputs))  # absolute: the resume key
    with results.locked(waiting):
        journal = InProgress(results.folder) if getattr(scanner, "in_process", True) else None
        left = journal.left() if journal else []
        ended = {Path(m.path): _ended_process(m) for m in left  # unless the file has changed since
                 if len(left) == 1 and m.alone and (m.size, m.mtime_ns) == _stat(Path(m.path))}
        alone = {Path(m.path) for m in left} - set(ended)
        for path, result in ended.items():
            if path not in paths:  # recorded now; the inputs of this batch in their turn below
                results.write(to_row(result), to_details(result))
        if journal:
            journal.clear()
        earlier = {path: None if overwrite or path in ended else
                   results.done(str(path), *_stat(path), scanner.settings_key) for path in paths}
        with writing(results.folder):
            html = HtmlReport(results) if report else None
        taking = partial(_taking, journal=journal, key=scanner.settings_key, alone=alone)
        scans = _scans(scanner, [p for p in paths if earlier[p] is None and p not in ended], alone, explain, taking)
        failed = False
        try:
            for path in paths:
                if earlier[path] is not None:
                    item = BatchItem(path, earlier[path], None)
                else:
                    result = ended.get(path) or next(scans)
                    item = BatchItem(path, results.write(to_row(result), to_details(result)), result)
                    if journal:
                        journal.finish(str(path))
                if html is not None:
                    with writing(results.folder):
                        html.add(item.row, item.result)
                yield item
        except ResultsError:
            failed = True  # nothing more is written: results.csv is whole, and the next run compacts it
            raise
        finally:
            scans.close()
            if journal:  # the process did not die: nothing it had in hand is to blame
                with contextlib.suppress(ResultsError):  # removing it works on a full disk, if not read-only
                    journal.clear()
            if not failed:
                results.compact()
                if html is not None:
                    with writing(results.folder):
                        html.close()


def _scans(scanner: Scanner, paths: list[Path], alone: set[Path], explain: bool,
           taking: Callable[[list[Path]], Iterator[Path]]) -> Iterator[ScanResult]:
    """`scanner.scan_many` over the paths in order; each one in `alone` in a scan_many of its own,
    begun only once the inputs before it are written, so nothing else is in hand beside it."""
    start = 0
    for i, path in enumerate(paths):
        if path in alone:
            if start < i:
                yield from scanner.scan_many(taking(paths[start:i]), explain)
            yield from scanner.scan_many(taking([path]), explain)
            start = i + 1
    if start < len(paths):
        yield from scanner.scan_many(taking(paths[start:]), explain)


def _taking(paths: list[Path], journal: InProgress | None, key: str, alone: set[Path]) -> Iterator[Path]:
    """The paths, each marked in progress as the scanner takes it (a local scanner takes each one
    as it starts on it); those in `alone` marked as scanned alone."""
    for path in paths:
        if journal is not None:
            journal.take(Mark(str(path), *_stat(path), key, alone=path in alone))
        yield path


def _ended_process(mark: Mark) -> ScanResult:
    """The error result of an input the last run had alone in hand when its process died."""
    return ScanResult(path=mark.path, status=Status.ERROR, size=mark.size, mtime_ns=mark.mtime_ns,
                      settings_key=mark.settings,
                      error=f"{ENDED_PROCESS} (twice, the second time scanned alone; --overwrite scans it again)")


def _stat(path: Path) -> tuple[int | None, int | None]:
    try:
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns
    except OSError:
        return None, None
