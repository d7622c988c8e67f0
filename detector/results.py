"""Results: `results.csv` (one row per input, what scripts read) and one JSON of details per input.

Every write goes to a temporary file in the same folder and is renamed over the old one, so a
crash or Ctrl-C leaves either the old file or the new one, never half of one. The CSV is
rewritten whole after each input (cheap next to scanning a video), which also makes the rows
already there the resume index: an input whose path, size, modification time and scan settings
match a row is not scanned again.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from detector.files import atomic_write

STATUSES = ("ok", "no_face", "unreadable", "error")


@dataclass
class Row:
    path: str
    status: str
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

    def to_csv(self) -> dict:
        data = asdict(self)
        data["p_fake"] = "" if self.p_fake is None else f"{self.p_fake:.6f}"
        data["seconds"] = f"{self.seconds:.3f}"
        return {k: "" if v is None else v for k, v in data.items()}

    @classmethod
    def from_csv(cls, data: dict) -> "Row":
        def number(text: str, kind):
            return kind(text) if text not in ("", None) else None
        return cls(
            path=data["path"], status=data["status"], label=data.get("label", ""),
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
        self.rows: dict[str, Row] = {}
        if self.csv_path.exists():
            with self.csv_path.open(newline="", encoding="utf-8") as handle:
                for data in csv.DictReader(handle):
                    if data.get("path") and data.get("status") in STATUSES:
                        self.rows[data["path"]] = Row.from_csv(data)

    def done(self, path: str, size: int | None, mtime_ns: int | None, settings: str) -> Row | None:
        """The earlier row for this exact file and settings, unless it ended in an internal error."""
        row = self.rows.get(path)
        if row and row.status != "error" and (row.size, row.mtime_ns, row.settings) == (size, mtime_ns, settings):
            return row
        return None

    def details_name(self, path: str) -> str:
        """A readable, collision-free file name for an input's details."""
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(path).name)[:80].lstrip(".-") or "input"
        return f"details/{stem}.{hashlib.sha1(path.encode()).hexdigest()[:8]}.json"

    def write(self, row: Row, details: dict | None) -> None:
        """Record one input: its details first, then the row that points to them."""
        if details is not None:
            row.details = self.details_name(row.path)
            atomic_write(self.folder / row.details, json.dumps(details, indent=1, allow_nan=False) + "\n")
        self.rows[row.path] = row
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for saved in self.rows.values():
            writer.writerow(saved.to_csv())
        atomic_write(self.csv_path, buffer.getvalue())
