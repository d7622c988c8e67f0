"""Results: `results.csv` (one row per input, what scripts read) and one JSON of details per input.

results.csv is append-only while a batch runs: each input adds one row with one fsynced write,
so the 100,000th input costs what the first did, and a crash loses at most the row being
written (opening the folder drops a torn last row). A rescan appends a newer row for the same
path; later rows win when reading, and the file is compacted to one row per input (written
whole to a temporary file and renamed into place) when a batch ends, or on opening when it holds
superseded, torn or foreign rows. The rows read on opening are the resume index, in memory: an
input whose path, size, modification time and scan settings match a row is not scanned again.

One writer at a time: a batch holds an OS lock on RESULTS/.lock (`ResultsFolder.locked`) from
before it reads the resume index until it has compacted, so overlapping runs on one folder take
turns and the later one scans only what the earlier left undone. A write that fails (full disk,
read-only folder, permission lost) raises ResultsError and leaves every row before it intact.

Inputs in progress are on disk too (`InProgress`, RESULTS/.scanning): a process that dies while
scanning (the OOM killer, a crash in a native decoder, SIGKILL) leaves behind which inputs it had
in hand, so the next batch can record the one that ended it instead of dying on it again.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from detector.files import append_csv, atomic_write, csv_text, read_csv_log, remove_stale_temps
from detector.scan.status import KEPT_ERRORS, Status

log = logging.getLogger("detector")


@dataclass(frozen=True)
class Row:
    path: str
    status: Status
    label: str = ""
    p_fake: float | None = None
    n_frames: int = 0
    n_faces: int = 0
    n_tracks: int = 0
    seconds: float = 0.0
    error: str = ""
    size: int | None = None
    mtime_ns: int | None = None
    settings: str = ""  # what produced the row (model fingerprint, frames, aggregate, threshold)
    details: str = ""  # the JSON file beside results.csv

    def to_csv(self) -> list[str]:
        data = asdict(self)
        data["p_fake"] = "" if self.p_fake is None else f"{self.p_fake:.6f}"
        data["seconds"] = f"{self.seconds:.3f}"
        return ["" if data[k] is None else str(data[k]) for k in COLUMNS]

    @classmethod
    def from_csv(cls, data: dict) -> "Row":
        def number(text: str, kind):
            return kind(text) if text not in ("", None) else None
        return cls(
            path=data["path"], status=Status(data["status"]), label=data.get("label", ""),
            p_fake=number(data.get("p_fake"), float), n_frames=number(data.get("n_frames"), int) or 0,
            n_faces=number(data.get("n_faces"), int) or 0, n_tracks=number(data.get("n_tracks"), int) or 0,
            seconds=number(data.get("seconds"), float) or 0.0, error=data.get("error", ""),
            size=number(data.get("size"), int), mtime_ns=number(data.get("mtime_ns"), int),
            settings=data.get("settings", ""), details=data.get("details", ""),
        )


COLUMNS = [f.name for f in fields(Row)]
LOCK_FILE = ".lock"  # the PID of the process writing the folder; locked (flock) while it does
SCANNING_FILE = ".scanning"  # the inputs a batch has in hand (InProgress)


class ResultsError(Exception):
    """The results folder cannot be written (full disk, read-only, permission lost): the batch
    stops, and the rows written before stay as they are."""


@contextmanager
def writing(folder: Path) -> Iterator[None]:
    """A failed write into the results folder as a ResultsError that names the folder and why."""
    try:
        yield
    except OSError as exc:
        raise ResultsError(f"cannot write results to {folder}: {exc.strerror or exc}") from exc


class ResultsFolder:
    """The RESULTS folder: results.csv plus details/<name>.json per input."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.csv_path = self.folder / "results.csv"
        self.details_dir = self.folder / "details"
        with writing(self.folder):
            self.details_dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.folder).close()  # can files be made here at all
        self.rows: dict[str, Row] = {}  # path → its latest row: the resume index
        self._stale = 0  # rows in results.csv that a later row (or nothing) supersedes
        if self._read() and (lock := self._lock(block=False)) is not None:
            try:  # repaired only where no other process is writing: it will compact on its own
                self._read()  # as it is now that nobody else can write it
                self.compact(force=True)
            finally:
                os.close(lock)

    def _read(self) -> bool:
        """Read results.csv into the resume index; whether it needs compacting (torn, superseded or
        foreign rows, an old header)."""
        self.rows, self._stale = {}, 0
        if not self.csv_path.exists():
            return False  # made with its header by the first write
        records, torn = read_csv_log(self.csv_path)
        header = records[0] if records else []
        for record in records[1:]:
            data = dict(zip(header, record))
            if data.get("path") and data.get("status") in tuple(Status):
                self.rows[data["path"]] = Row.from_csv(data)
        self._stale = len(records) - 1 - len(self.rows)
        return bool(torn or header != COLUMNS or self._stale)

    @contextmanager
    def locked(self, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
        """Be the folder's one writer: hold RESULTS/.lock, then read results.csv again (what another
        run wrote meanwhile is done, not redone). Where another process holds it, `waiting` gets a
        line naming the folder and that process, and this waits for it. The lock is the OS's
        (flock): it goes with its process, so one left by a killed run never blocks anyone."""
        lock = self._lock(waiting)
        try:
            with writing(self.folder):  # what a killed writer was halfway through writing
                remove_stale_temps(self.folder)
            if self._read():
                self.compact(force=True)
            yield
        finally:
            if lock is not None:
                os.close(lock)

    def _lock(self, waiting: Callable[[str], None] | None = None, block: bool = True) -> int | None:
        """Lock RESULTS/.lock and write this PID into it; the open file, whose closing unlocks.
        Without `block`, None where another process holds the lock."""
        with writing(self.folder):  # held read-only: an open writable file would stop a remount read-only
            fd = os.open(self.folder / LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not block:
                    os.close(fd)
                    return None
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                (waiting or log.info)(f"{self.folder} is being written by another run (process {holder or '?'}): "
                                      "waiting for it to finish; the inputs it scans will not be scanned again")
                fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(OSError), open(self.folder / LOCK_FILE, "w", encoding="ascii") as pid:
                pid.write(f"{os.getpid()}\n")  # in place (a new file would be a new lock); only to name us
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            log.warning("%s cannot be locked (%s): do not run two batches on it at once", self.folder, exc.strerror)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def done(self, path: str, size: int | None, mtime_ns: int | None, settings: str) -> Row | None:
        """The earlier row for this exact file and settings, unless it ended in an internal error
        (other than a timeout or the end of the process, which are kept: see status.KEPT_ERRORS)."""
        row = self.rows.get(path)
        kept = row is not None and (row.status != Status.ERROR or row.error.startswith(KEPT_ERRORS))
        if kept and (row.size, row.mtime_ns, row.settings) == (size, mtime_ns, settings):
            return row
        return None

    def details_name(self, path: str) -> str:
        """A readable, collision-free file name for an input's details."""
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(path).name)[:80].lstrip(".-") or "input"
        return f"details/{stem}.{hashlib.sha1(path.encode()).hexdigest()[:8]}.json"

    def write(self, row: Row, details: dict | None) -> Row:
        """Record one input: its details first, then the row that points to them (returned).
        ResultsError where either cannot be written; the rows before it are left intact."""
        with writing(self.folder):
            if details is not None:
                row = replace(row, details=self.details_name(row.path))
                atomic_write(self.folder / row.details, json.dumps(details, indent=1, allow_nan=False) + "\n")
            if not self.csv_path.exists():
                atomic_write(self.csv_path, csv_text([COLUMNS]))
            append_csv(self.csv_path, [row.to_csv()])
        if row.path in self.rows:
            self._stale += 1
        self.rows[row.path] = row
        return row

    def compact(self, force: bool = False) -> None:
        """Rewrite results.csv with one row per input, if rescans left superseded rows."""
        if self._stale or force:
            with writing(self.folder):
                atomic_write(self.csv_path, csv_text([COLUMNS, *(row.to_csv() for row in self.rows.values())]))
            self._stale = 0


@dataclass(frozen=True)
class Mark:
    """An input a batch has taken in hand, with what its row's resume key would hold."""
    path: str
    size: int | None
    mtime_ns: int | None
    settings: str
    alone: bool = False  # scanned by itself, as a run that died with it in hand left it to be


class InProgress:
    """RESULTS/.scanning: the inputs the folder's writer has taken in hand and not yet written a
    row for. The file is rewritten whole (atomic_write: written, fsynced, renamed) each time an
    input is taken or finished, and removed when none is in hand, so whatever ends the process it
    says which inputs were being scanned. Only the holder of RESULTS/.lock touches it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / SCANNING_FILE
        self.marks: dict[str, Mark] = {}

    def left(self) -> list[Mark]:
        """The inputs in hand when the last writer stopped: none where it ended as it should."""
        try:
            return [Mark(**entry) for entry in json.loads(self.path.read_text(encoding="utf-8"))]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as exc:  # not ours, or damaged: nothing to go by
            log.warning("%s cannot be read (%s): ignored", self.path, exc)
            return []

    def take(self, mark: Mark) -> None:
        self.marks[mark.path] = mark
        self._save()

    def finish(self, path: str) -> None:
        if self.marks.pop(path, None) is not None:
            self._save()

    def clear(self) -> None:
        self.marks.clear()
        self._save()

    def _save(self) -> None:
        with writing(self.folder):
            if self.marks:
                atomic_write(self.path, json.dumps([asdict(m) for m in self.marks.values()]) + "\n")
            else:
                self.path.unlink(missing_ok=True)
