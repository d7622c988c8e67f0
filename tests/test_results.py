"""Results: atomic files, rows that survive a round trip, resume, and details JSON."""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detector import files
from detector.output import results as results_module
from detector.api import scan_batch
from detector.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREADABLE, run_batch
from detector.files import append_csv, atomic_write, read_csv_log
from detector.scan.aggregation import Verdict
from detector.scan.scanner import ScanResult
from detector.output.results import COLUMNS, ResultsError, ResultsFolder, Row


def test_atomic_write_leaves_only_the_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write(target, "one\n")
    atomic_write(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write(target, "old\n")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # the write fails after the temporary file exists
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_rows_round_trip_with_awkward_paths(tmp_path):
    folder = ResultsFolder(tmp_path / "out")
    rows = [
        Row(path="/v/plain.mp4", status="ok", label="FAKE", p_fake=0.912345678, n_frames=32, n_faces=30, n_tracks=1,
            seconds=1.23456, size=100, mtime_ns=1700000000123456789, settings="model=abc;frames=32"),
        Row(path='/v/comma, "quote"\nnewline ünïcødé -x.mp4', status="no_face", n_frames=8, error="no face found"),
        Row(path="/v/bad.mp4", status="unreadable", error="moov atom not found, truncated", size=0, mtime_ns=5),
    ]
    for row in rows:
        folder.write(row, {"input": row.path, "status": row.status})
    with (tmp_path / "out" / "results.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        body = list(reader)
    assert header == COLUMNS
    assert header[:9] == ["path", "status", "label", "p_fake", "n_frames", "n_faces", "n_tracks", "seconds", "error"]
    assert len(body) == 3
    again = ResultsFolder(tmp_path / "out").rows
    assert list(again) == [r.path for r in rows]
    first = again["/v/plain.mp4"]
    assert first.p_fake == pytest.approx(0.912346, abs=1e-6) and first.seconds == pytest.approx(1.235, abs=1e-3)
    assert (first.size, first.mtime_ns, first.n_frames, first.n_faces, first.n_tracks) == (
        100, 1700000000123456789, 32, 30, 1)
    assert again[rows[1].path].p_fake is None and again[rows[1].path].error == "no face found"
    assert again["/v/bad.mp4"].size == 0  # a zero size is not lost as "unknown"
    # details: one JSON per input, readable, named after the input, distinct for same-named files
    for row in again.values():
        data = json.loads((tmp_path / "out" / row.details).read_text())
        assert data["input"] == row.path
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_details_names_do_not_collide(tmp_path):
    folder = ResultsFolder(tmp_path)
    a, b = folder.details_name("/a/clip.mp4"), folder.details_name("/b/clip.mp4")
    assert a != b and "clip.mp4" in a and a.startswith("details/") and a.endswith(".json")
    assert not Path(folder.details_name("/x/-rf .mp4")).name.startswith(("-", "."))


def test_done_matches_path_size_mtime_and_settings(tmp_path):
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/a.mp4", status="ok", label="REAL", p_fake=0.1, size=10, mtime_ns=20, settings="s1"), None)
    folder.write(Row(path="/v/b.mp4", status="error", error="RuntimeError: x", size=10, mtime_ns=20, settings="s1"), None)
    folder.write(Row(path="/v/c.mp4", status="unreadable", error="empty", size=0, mtime_ns=20, settings="s1"), None)
    reread = ResultsFolder(tmp_path)
    assert reread.done("/v/a.mp4", 10, 20, "s1").label == "REAL"
    assert reread.done("/v/a.mp4", 11, 20, "s1") is None  # changed size
    assert reread.done("/v/a.mp4", 10, 21, "s1") is None  # touched
    assert reread.done("/v/a.mp4", 10, 20, "s2") is None  # other settings
    assert reread.done("/v/b.mp4", 10, 20, "s1") is None  # an internal error is retried
    assert reread.done("/v/c.mp4", 0, 20, "s1").status == "unreadable"  # a bad file stays bad
    assert reread.done("/v/new.mp4", 1, 2, "s1") is None


def test_foreign_or_damaged_csv_lines_are_ignored(tmp_path):
    (tmp_path / "results.csv").write_text(
        "path,status,label\n/v/a.mp4,ok,REAL\n,ok,REAL\n/v/b.mp4,weird,\n/v/c.mp4\n", encoding="utf-8")
    assert list(ResultsFolder(tmp_path).rows) == ["/v/a.mp4"]


def test_unwritable_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsError, match="cannot write results"):
        ResultsFolder(tmp_path / "file" / "sub")


# ---- resume through run_batch with a stand-in scanner (no model needed) ----

class FakeScanner:
    """Says every input is REAL with p = 0.25, or fails as told; records what it scanned."""

    def __init__(self, key: str = "k1", fail: dict | None = None, interrupt_at: int | None = None):
        self.settings_key = key
        self.scanned: list[str] = []
        self.fail = fail or {}
        self.interrupt_at = interrupt_at

    def scan(self, path: Path):
        if self.interrupt_at is not None and len(self.scanned) == self.interrupt_at:
            raise KeyboardInterrupt
        self.scanned.append(path.name)
        stat = path.stat()
        status = self.fail.get(path.name, "ok")
        verdict = dict(verdict=Verdict(p_fake=0.25, label="REAL", p_raw=0.25, aggregate="mean", threshold=0.5,
                                       tracks=[], reason="test")) if status == "ok" else dict(error=f"{status} on purpose")
        return ScanResult(path=str(path), status=status, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                          settings_key=self.settings_key, **verdict)

    def scan_many(self, paths, explain: bool = False):
        for path in paths:
            yield self.scan(path)


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    paths = []
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(name.encode() * 10)
        paths.append(tmp_path / name)
    return paths


def test_resume_skips_unchanged_and_rescans_changed(tmp_path, inputs):
    out = tmp_path / "out"
    first = FakeScanner()
    summary = run_batch(first, inputs, ResultsFolder(out), progress=False)
    assert first.scanned == ["a.mp4", "b.mp4", "c.mp4"] and summary.exit_code == EXIT_OK
    assert summary.scanned == 3 and summary.skipped == 0 and summary.labels["REAL"] == 3

    again = FakeScanner()
    summary = run_batch(again, inputs, ResultsFolder(out), progress=False)
    assert again.scanned == [] and summary.skipped == 3 and summary.scanned == 0
    assert "3 already in results" in summary.line() and "3 REAL" in summary.line()

    stat = inputs[1].stat()
    os.utime(inputs[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touch
    touched = FakeScanner()
    run_batch(touched, inputs, ResultsFolder(out), progress=False)
    assert touched.scanned == ["b.mp4"]

    other = FakeScanner(key="k2")  # other model / frames / threshold
    run_batch(other, inputs, ResultsFolder(out), progress=False)
    assert other.scanned == ["a.mp4", "b.mp4", "c.mp4"]

    forced = FakeScanner(key="k2")
    summary = run_batch(forced, inputs, ResultsFolder(out), overwrite=True, progress=False)
    assert forced.scanned == ["a.mp4", "b.mp4", "c.mp4"] and summary.skipped == 0
    assert len(ResultsFolder(out).rows) == 3


def test_error_rows_are_retried_and_unreadable_sets_the_exit_code(tmp_path, inputs):
    out = tmp_path / "out"
    scanner = FakeScanner(fail={"b.mp4": "error", "c.mp4": "unreadable"})
    summary = run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    assert summary.exit_code == EXIT_UNREADABLE
    assert summary.statuses == {"ok": 1, "error": 1, "unreadable": 1}
    rows = ResultsFolder(out).rows
    assert rows[str(inputs[1])].error == "error on purpose"
    retry = FakeScanner()
    summary = run_batch(retry, inputs, ResultsFolder(out), progress=False)
    assert retry.scanned == ["b.mp4"]  # only the internal error; the unreadable file is unchanged
    assert summary.exit_code == EXIT_UNREADABLE  # c.mp4 is still unreadable


def test_interrupt_keeps_finished_rows(tmp_path, inputs):
    out = tmp_path / "out"
    scanner = FakeScanner(interrupt_at=2)
    summary = run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    assert summary.interrupted and summary.exit_code == EXIT_INTERRUPTED
    assert "Interrupted" in summary.line()
    assert list(ResultsFolder(out).rows) == [str(p) for p in inputs[:2]]
    rest = FakeScanner()
    summary = run_batch(rest, inputs, ResultsFolder(out), progress=False)
    assert rest.scanned == ["c.mp4"] and summary.skipped == 2 and summary.exit_code == EXIT_OK


def test_missing_input_in_batch_is_not_crashing_the_resume_check(tmp_path, inputs):
    ghost = tmp_path / "ghost.mp4"
    scanner = FakeScanner()
    scanner.scan = lambda path: ScanResult(path=str(path), status="unreadable", error="file not found")
    summary = run_batch(scanner, [ghost], ResultsFolder(tmp_path / "out"), progress=False)
    assert summary.statuses["unreadable"] == 1 and summary.exit_code == EXIT_UNREADABLE


# ---- results.csv grows by appends; torn tails, rescans and compaction ----

def _csv_rows(folder: Path) -> list[dict]:
    with (folder / "results.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_writing_a_row_appends_and_leaves_earlier_rows_untouched(tmp_path):
    folder = ResultsFolder(tmp_path)
    assert not (tmp_path / "results.csv").exists()  # made by the first write, not by opening
    folder.write(Row(path="/v/a.mp4", status="ok", label="REAL", p_fake=0.1), None)
    before = (tmp_path / "results.csv").read_bytes()
    inode = (tmp_path / "results.csv").stat().st_ino
    folder.write(Row(path="/v/b.mp4", status="no_face", error="no face"), None)
    after = (tmp_path / "results.csv").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 3
    assert (tmp_path / "results.csv").stat().st_ino == inode  # appended in place, not replaced


@pytest.mark.parametrize("cut", [1, 9, -12, -1])
def test_a_torn_last_row_is_dropped_on_opening_and_earlier_rows_survive(tmp_path, cut):
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/a.mp4", status="ok", label="REAL", p_fake=0.1, size=1, mtime_ns=2, settings="s"), None)
    folder.write(Row(path='/v/new\nline, "quoted".mp4', status="ok", label="FAKE", p_fake=0.9), None)
    whole = (tmp_path / "results.csv").read_bytes()
    last = whole.rindex(b"/v/new") - 1  # where the last row (starting with its opening quote) begins
    (tmp_path / "results.csv").write_bytes(whole[: last + cut] if cut > 0 else whole[:cut])  # a crash mid-append
    reopened = ResultsFolder(tmp_path)
    assert list(reopened.rows) == ["/v/a.mp4"]
    assert reopened.done("/v/a.mp4", 1, 2, "s").label == "REAL"
    assert (tmp_path / "results.csv").read_bytes() == whole[: last]  # repaired: the torn row is gone
    reopened.write(Row(path="/v/c.mp4", status="unreadable", error="empty"), None)
    assert [r["path"] for r in _csv_rows(tmp_path)] == ["/v/a.mp4", "/v/c.mp4"]


def test_the_temp_files_of_a_writer_killed_mid_write_go_when_the_next_takes_the_folder(tmp_path):
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/a.mp4", status="ok", label="REAL", p_fake=0.1), {"a": 1})
    left = [tmp_path / ".scanning.k2j4.tmp", tmp_path / ".results.csv.x9q1.tmp", tmp_path / "details" / ".a.json.0f3.tmp",
            tmp_path / "report" / "inputs" / ".641c.js.7lio.tmp"]  # the report's per-input files too (the kill-soak found one)
    for tmp in left:  # what SIGKILL between mkstemp and rename leaves behind
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("half")
    (tmp_path / "notes.tmp").write_text("mine")  # not one of atomic_open's: left alone
    with ResultsFolder(tmp_path).locked():
        assert not any(tmp.exists() for tmp in left)
    assert (tmp_path / "notes.tmp").read_text() == "mine"
    assert [r["path"] for r in _csv_rows(tmp_path)] == ["/v/a.mp4"]


def test_a_rescan_appends_later_rows_win_and_compaction_keeps_one_row_per_input(tmp_path):
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/a.mp4", status="error", error="RuntimeError: x"), None)
    folder.write(Row(path="/v/b.mp4", status="ok", label="REAL", p_fake=0.2), None)
    folder.write(Row(path="/v/a.mp4", status="ok", label="FAKE", p_fake=0.8), None)
    assert [r["path"] for r in _csv_rows(tmp_path)] == ["/v/a.mp4", "/v/b.mp4", "/v/a.mp4"]  # not yet compacted
    assert ResultsFolder(tmp_path).rows["/v/a.mp4"].label == "FAKE"  # later rows win; opening compacts
    rows = _csv_rows(tmp_path)
    assert [(r["path"], r["label"]) for r in rows] == [("/v/a.mp4", "FAKE"), ("/v/b.mp4", "REAL")]
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/b.mp4", status="ok", label="FAKE", p_fake=0.7), None)
    folder.compact()
    assert [(r["path"], r["label"]) for r in _csv_rows(tmp_path)] == [("/v/a.mp4", "FAKE"), ("/v/b.mp4", "FAKE")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "details", "results.csv"]  # opening compacted


def test_a_batch_compacts_once_at_its_end(tmp_path, inputs, monkeypatch):
    out = tmp_path / "out"
    run_batch(FakeScanner(), inputs, ResultsFolder(out), progress=False)
    compactions = []
    real = ResultsFolder.compact
    monkeypatch.setattr(ResultsFolder, "compact", lambda self, force=False: (compactions.append(len(_csv_rows(out))),
                                                                               real(self, force)))
    run_batch(FakeScanner(), inputs, ResultsFolder(out), overwrite=True, progress=False)
    assert compactions == [6]  # once, after all three rescans were appended
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4", "b.mp4", "c.mp4"]


def test_an_interrupted_batch_still_compacts(tmp_path, inputs):
    out = tmp_path / "out"
    run_batch(FakeScanner(), inputs, ResultsFolder(out), progress=False)
    summary = run_batch(FakeScanner(interrupt_at=2), inputs, ResultsFolder(out), overwrite=True, progress=False)
    assert summary.interrupted
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4", "b.mp4", "c.mp4"]


# ---- one writer at a time: RESULTS/.lock ----

HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
time.sleep(600)
"""


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process holding the results folder's lock, as a running batch does."""
    out.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_batch_waits_for_the_folders_writer_and_a_killed_writer_blocks_nobody(tmp_path, inputs):
    out = tmp_path / "out"
    holder = _hold_lock(out)
    told = []

    def waiting(line: str) -> None:  # told once, before waiting: the writer is then killed, not ended
        told.append(line)
        holder.kill()

    try:
        scanner = FakeScanner()
        items = list(scan_batch(scanner, inputs, ResultsFolder(out), waiting=waiting))
    finally:
        holder.kill()
        holder.wait()
    assert len(told) == 1 and str(out) in told[0] and f"process {holder.pid}" in told[0]
    assert scanner.scanned == ["a.mp4", "b.mp4", "c.mp4"] and len(items) == 3
    assert (out / ".lock").read_text() == f"{os.getpid()}\n"  # the PID a waiting run names
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4", "b.mp4", "c.mp4"]


def test_a_waiting_batch_scans_only_what_the_writer_before_it_left(tmp_path, inputs):
    # The first batch writes two rows while the second waits; the second, let in, rereads results.csv.
    out = tmp_path / "out"
    run_batch(FakeScanner(), inputs[:2], ResultsFolder(out), progress=False)
    folder = ResultsFolder(tmp_path / "out")
    (out / "results.csv").unlink()
    waiting_folder = ResultsFolder(out)  # opened (index read) before the first batch wrote anything
    run_batch(FakeScanner(), inputs[:2], folder, progress=False)
    second = FakeScanner()
    summary = run_batch(second, inputs, waiting_folder, progress=False)
    assert second.scanned == ["c.mp4"] and summary.skipped == 2
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4", "b.mp4", "c.mp4"]


def test_opening_a_folder_another_run_writes_leaves_its_file_alone(tmp_path):
    # Compacting (rewriting) results.csv while another process appends would lose its rows.
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/a.mp4", status="ok", label="REAL", p_fake=0.1), None)
    folder.write(Row(path="/v/a.mp4", status="ok", label="FAKE", p_fake=0.9), None)  # a superseded row
    before = (tmp_path / "results.csv").read_bytes()
    holder = _hold_lock(tmp_path)
    try:
        assert ResultsFolder(tmp_path).rows["/v/a.mp4"].label == "FAKE"
        assert (tmp_path / "results.csv").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    ResultsFolder(tmp_path)  # nobody writing: now it compacts
    assert [r["label"] for r in _csv_rows(tmp_path)] == ["FAKE"]


# ---- a results folder that cannot be written any more: full disk, read-only ----

def test_a_failed_append_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    append_csv(path, [["path", "status"], ["/v/a.mp4", "ok"]])
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd: int, data) -> int:  # part of the row goes out, then the disk is full
        monkeypatch.setattr(files.os, "write", failing)
        return real_write(fd, bytes(data[: len(data) // 2]))

    def failing(fd: int, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        append_csv(path, [['/v/new\nline "b".mp4', "ok"]])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_csv_log(path) == ([["path", "status"], ["/v/a.mp4", "ok"]], False)


@pytest.mark.parametrize("fails", ["append", "details"])
def test_a_full_disk_stops_the_batch_keeps_its_rows_and_a_rerun_resumes(tmp_path, inputs, monkeypatch, fails):
    out = tmp_path / "out"
    target = {"append": "append_csv", "details": "atomic_write"}[fails]
    real = getattr(results_module, target)
    calls = []

    def fill_up(path, *args):
        if Path(path).name == results_module.SCANNING_FILE:  # the in-progress marks: not what fills up here
            return real(path, *args)
        calls.append(Path(path).name)
        if Path(path).name != "results.csv" or fails == "append":  # the header is written whole once
            if len([c for c in calls if (c == "results.csv") == (fails == "append")]) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, *args)

    monkeypatch.setattr(results_module, target, fill_up)
    scanner = FakeScanner()
    summary = run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    monkeypatch.undo()
    assert summary.exit_code == 2 and "No space left on device" in summary.failed and str(out) in summary.failed
    assert "Stopped after 1 scanned" in summary.line()
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4"]
    assert not list(out.rglob("*.tmp"))
    rest = FakeScanner()
    summary = run_batch(rest, inputs, ResultsFolder(out), progress=False)
    assert rest.scanned == ["b.mp4", "c.mp4"] and summary.skipped == 1 and summary.exit_code == EXIT_OK
    assert [Path(r["path"]).name for r in _csv_rows(out)] == ["a.mp4", "b.mp4", "c.mp4"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KiB tmpfs mounted for the test (root only); skips where no filesystem can be mounted."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip() or made.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_a_real_full_or_read_only_disk_mid_batch(small_tmpfs, tmp_path, how):
    """On a real filesystem: filled up (ENOSPC), or remounted read-only (EROFS), during the batch."""
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"clip{i:02d}.mp4")
        paths[-1].write_bytes(b"x")
    out = small_tmpfs / "results"

    class Filling(FakeScanner):
        def scan(self, path):
            if len(self.scanned) == 5:  # the disk fills (or turns read-only) after five inputs
                if how == "full":
                    # unbuffered: nothing left to flush (and fail) on closing
                    with open(small_tmpfs / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
                        while True:
                            filler.write(b"\0" * 4096)
                else:
                    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
            return super().scan(path)

    summary = run_batch(Filling(), paths, ResultsFolder(out), progress=False, report=True)
    why = {"full": "No space left on device", "read-only": "Read-only file system"}[how]
    assert summary.exit_code == 2 and why in summary.failed
    rows = _csv_rows(out)  # parses, and holds a whole row for each input written before
    assert 5 <= len(rows) < len(paths) and [r["path"] for r in rows] == [str(p) for p in paths[: len(rows)]]
    assert all((out / r["details"]).is_file() for r in rows)
    if how == "full":
        (small_tmpfs / "filler").unlink()
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], check=True)
    rest = FakeScanner()
    summary = run_batch(rest, paths, ResultsFolder(out), progress=False)
    assert len(rest.scanned) == len(paths) - len(rows) and summary.exit_code == EXIT_OK
    assert [r["path"] for r in _csv_rows(out)] == [str(p) for p in paths]


# ---- inputs in progress (RESULTS/.scanning): an input that ends the process gets a row ----

from detector.output.results import InProgress, Mark  # noqa: E402
from detector.scan.status import ENDED_PROCESS  # noqa: E402


class Grouping(FakeScanner):
    """Records each scan_many call's inputs, and what RESULTS/.scanning held as each was scanned."""

    def __init__(self, out: Path, **kwargs):
        super().__init__(**kwargs)
        self.out, self.groups, self.marked = out, [], []

    def scan_many(self, paths, explain: bool = False):
        self.groups.append([])
        for path in paths:
            self.groups[-1].append(path.name)
            self.marked.append(sorted(Path(m.path).name for m in InProgress(self.out).left()))
            yield self.scan(path)


def _died_with(out: Path, inputs: list[Path], alone: bool = False, key: str = "k1") -> None:
    """RESULTS/.scanning as a run that died with these inputs in hand left it."""
    journal = InProgress(out)
    for path in inputs:
        stat = path.stat()
        journal.take(Mark(str(path), stat.st_size, stat.st_mtime_ns, key, alone=alone))


def test_each_input_is_marked_in_progress_while_scanned_and_the_marks_go_with_a_whole_batch(tmp_path, inputs):
    out = tmp_path / "out"
    scanner = Grouping(out)
    run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    assert scanner.marked == [["a.mp4"], ["b.mp4"], ["c.mp4"]]  # each on disk while it was scanned
    assert not (out / ".scanning").exists()


def test_inputs_left_in_progress_are_scanned_alone_and_one_that_ends_the_process_again_gets_a_kept_row(
        tmp_path, inputs):
    out = tmp_path / "out"
    ResultsFolder(out)
    _died_with(out, inputs[:2])  # two in hand: which one ended the process is not known
    scanner = Grouping(out)
    summary = run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    assert scanner.groups == [["a.mp4"], ["b.mp4"], ["c.mp4"]] and summary.exit_code == EXIT_OK
    assert scanner.marked[:2] == [["a.mp4"], ["b.mp4"]]  # each alone in hand
    _died_with(out, inputs[1:2], alone=True)  # the process died again, b alone in hand
    again = Grouping(out)
    summary = run_batch(again, inputs, ResultsFolder(out), progress=False)
    assert again.scanned == [] and summary.statuses["error"] == 1 and summary.scanned == 1
    row = ResultsFolder(out).rows[str(inputs[1])]
    assert row.status == "error" and row.error.startswith(ENDED_PROCESS)
    assert json.loads((out / row.details).read_text())["error"] == row.error
    later = FakeScanner()
    run_batch(later, inputs, ResultsFolder(out), progress=False)
    assert later.scanned == []  # not retried forever
    forced = FakeScanner()
    run_batch(forced, inputs, ResultsFolder(out), overwrite=True, progress=False)
    assert forced.scanned == ["a.mp4", "b.mp4", "c.mp4"]  # --overwrite retries it
    assert ResultsFolder(out).rows[str(inputs[1])].status == "ok"


def test_an_input_that_changed_since_it_ended_the_process_is_scanned_again(tmp_path, inputs):
    out = tmp_path / "out"
    ResultsFolder(out)
    _died_with(out, inputs[:1], alone=True)
    inputs[0].write_bytes(b"another file now")
    scanner = FakeScanner()
    run_batch(scanner, inputs, ResultsFolder(out), progress=False)
    assert scanner.scanned == ["a.mp4", "b.mp4", "c.mp4"]


def test_timed_out_rows_are_kept_on_reruns_other_errors_retried(tmp_path):
    folder = ResultsFolder(tmp_path)
    folder.write(Row(path="/v/t.mp4", status="error", error="timed out after 600 s (--input-timeout) while decoding",
                     size=1, mtime_ns=2, settings="s"), None)
    folder.write(Row(path="/v/e.mp4", status="error", error="RuntimeError: x", size=1, mtime_ns=2, settings="s"), None)
    assert folder.done("/v/t.mp4", 1, 2, "s") is not None and folder.done("/v/e.mp4", 1, 2, "s") is None
