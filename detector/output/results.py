"""Results: `results.csv` (one row per input, what scripts read) and one JSON of details per input.

results.csv is append-only while a batch runs: each input adds one row with one fsynced write,
so the 100,000th input costs what the first did, and a crash loses at most the row being
written (opening the folder drops a torn last row). A rescan appends a newer row for the same
path; later rows win when reading, and the file is compacted to one row per input (written
whole to a temporary file and renamed into place) when a batch ends, or on opening when it holds
superseded, torn or foreign rows. The rows read on opening are the resume index, in memory: an
input whose path, size, modification time and scan settings match a row is not scanned again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from detector.files import append_csv, atomic_write, csv_text, read_csv_log
from detector.scan.status import Status

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


class ResultsFolder:
    """The RESULTS folder: results.csv plus details/<name>.json per input."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.csv_path = self.folder / "results.csv"
        self.details_dir = self.folder / "details"
        try:
            self.details_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.folder / ".write-test", "")
            (self.folder / ".write-test").unlink()
        except OSError as exc:
            raise PermissionError(f"cannot write results to {self.folder}: {exc.strerror or exc}") from None
        self.rows: dict[str, Row] = {}  # path → its latest row: the resume index
        self._stale = 0  # rows in results.csv that a later row (or nothing) supersedes
        if not self.csv_path.exists():
            return  # made with its header by the first write
        records, torn = read_csv_log(self.csv_path)
        header = records[0] if records else []
        for record in records[1:]:
            data = dict(zip(header, record))
            if data.get("path") and data.get("status") in tuple(Status):
                self.rows[data["path"]] = Row.from_csv(data)
        self._stale = len(records) - 1 - len(self.rows)
        if torn or header != COLUMNS or self._stale:
            self.compact(force=True)

    def done(self, path: str, size: int | None, mtime_ns: int | None, settings: str) -> Row | None:
        """The earlier row for this exact file and settings, unless it ended in an internal error."""
        row = self.rows.get(path)
        if row and row.status != Status.ERROR and (row.size, row.mtime_ns, row.settings) == (size, mtime_ns, settings):
            return row
        return None

    def details_name(self, path: str) -> str:
        """A readable, collision-free file name for an input's details."""
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(path).name)[:80].lstrip(".-") or "input"
        return f"details/{stem}.{hashlib.sha1(path.encode()).hexdigest()[:8]}.json"

    def write(self, row: Row, details: dict | None) -> Row:
        """Record one input: its details first, then the row that points to them (returned)."""
        if details is not None:
            row = replace(row, details=self.details_name(row.path))
            atomic_write(self.folder / row.details, json.dumps(details, indent=1, allow_nan=False) + "\n")
        if not self.csv_path.exists():
            atomic_write(self.csv_path, csv_text([COLUMNS]))
        if row.path in self.rows:
            self._stale += 1
        self.rows[row.path] = row
        append_csv(self.csv_path, [row.to_csv()])
        return row

    def compact(self, force: bool = False) -> None:
        """Rewrite results.csv with one row per input, if rescans left superseded rows."""
        if self._stale or force:
            atomic_write(self.csv_path, csv_text([COLUMNS, *(row.to_csv() for row in self.rows.values())]))
            self._stale = 0
