"""Crash-safe files. Whole files are written through `atomic_open`, so a reader (or a crash)
only ever sees the old or the new version, never half of one; the CSVs that grow one record per
input (results.csv, the crop index) are appended to with `append_csv` and read back with
`read_csv_log`, which drops a torn last record."""
from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temp file beside `path`, fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: Path) -> None:
    """Delete the temp files `atomic_open` leaves in `folder` and below (the report's per-input
    files too) when its process is killed mid-write (SIGKILL skips the clean-up). Only the
    folder's one writer may: another's are not stale."""
    for tmp in Path(folder).rglob(".*.tmp"):  # rglob does not follow links out of the folder
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text or bytes) atomically."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def csv_text(records: Iterable[Sequence[Any]]) -> str:
    """Records as CSV text with "\\n" line ends, quoted as the csv module reads them back."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    return buffer.getvalue()


def append_csv(path: Path, records: Iterable[Sequence[Any]]) -> None:
    """Append records to a CSV in one write, then fsync: a crash loses at most this write, whose
    torn tail `read_csv_log` drops, and never touches the records before it; a write that fails
    (a full disk) is cut off again, so the file ends where it did. Cost does not grow with the
    file (results.csv and the crop index grow to 100,000s of rows)."""
    data = csv_text(records).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)


def read_csv_log(path: Path) -> tuple[list[list[str]], bool]:
    """The complete records (header first) of a CSV written by `append_csv`, and whether a torn
    last record was dropped. It is torn when the file does not end with a newline, or its
    last record is cut inside a quoted field (an odd number of quote characters: a whole CSV
    doubles the ones it holds) or has fewer or more fields than the header."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(text, newline="")))
    torn = bool(text) and (not text.endswith("\n") or text.count('"') % 2 == 1
                           or (len(records) > 1 and len(records[-1]) != len(records[0])))
    return (records[:-1] if torn else records), torn
