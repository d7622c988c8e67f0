"""Inputs made to hurt, end to end: each gets one row and the batch goes on; an input stuck past
its deadline is given up on; a scanner killed outright, again and again, loses nothing."""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hostile
from conftest import ROOT, face_clip, ffmpeg
from detector.files import read_csv_log
from detector.scan.status import TIMED_OUT


def run_app(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def rows_of(out: Path) -> dict[str, dict]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["path"] for r in rows}) == len(rows), "a path has two rows"
    return {Path(r["path"]).name: r for r in rows}


def ffmpegs_under(folder: Path) -> list[str]:
    """Running ffmpeg processes whose command line names something in `folder`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "ffmpeg" in command and str(folder) in command:
            found.append(f"{pid}: {command}")
    return found


# name → (status, words the error must contain)
HOSTILE = {
    "face.mp4": ("ok", ""),
    "bomb.png": ("unreadable", "20000 × 20000"),
    "bomb.jpg": ("unreadable", "30000 × 30000"),
    "stream.mp4": ("unreadable", "30000 × 30000"),
    "many.gif": ("no_face", "no face"),
    "rotten.mp4": (None, ""),  # whatever its valid part gives, with a row
    "pipe.mp4": ("unreadable", "FIFO"),
    "zero.mp4": ("unreadable", "/dev/zero"),
}


def test_every_hostile_input_gets_one_clear_row_and_the_batch_goes_on(brightness_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    face_clip(folder / "face.mp4", seconds=1.0, size="320x240")
    (folder / "astronaut.png").unlink()
    hostile.png_bomb(folder / "bomb.png")
    hostile.jpeg_bomb(folder / "bomb.jpg")
    hostile.stream_bomb_mp4(folder / "stream.mp4")
    hostile.many_frames_gif(folder / "many.gif")
    hostile.random_after(folder / "rotten.mp4", hostile.noise_clip(tmp_path / "noise.mp4", seconds=1.5))
    hostile.fifo(folder / "pipe.mp4")
    hostile.link_to_dev_zero(folder / "zero.mp4")
    out = tmp_path / "RESULTS"
    proc = run_app("--input", str(folder), "--output", str(out), "--model", str(brightness_model), "--frames", "4", "-q")
    assert proc.returncode == 1, proc.stderr
    rows = rows_of(out)
    assert sorted(rows) == sorted(HOSTILE), proc.stderr
    for name, (status, words) in HOSTILE.items():
        if status:
            assert rows[name]["status"] == status, (name, rows[name])
        assert words.lower() in rows[name]["error"].lower(), (name, rows[name]["error"])
        json.loads((out / rows[name]["details"]).read_text())
    assert "over the limit of 100 megapixels" in rows["bomb.png"]["error"]
    again = run_app("--input", str(folder), "--output", str(out), "--model", str(brightness_model), "--frames", "4",
                    "-q")
    assert again.returncode == 1 and f"{len(HOSTILE)} already in results" in again.stderr, again.stderr


def test_an_input_stuck_past_its_deadline_is_given_up_on_and_the_batch_goes_on(brightness_model, noface_clip,
                                                                               tmp_path, monkeypatch):
    import detector
    from detector.scan import scanner as pipeline

    for name in ("stuck.mp4", "next.mp4"):
        shutil.copy(noface_clip, tmp_path / name)
    release = threading.Event()
    real = pipeline.extract_faces

    def extract(source, *args, **kwargs):
        if Path(source.path).name == "stuck.mp4":
            release.wait(60)  # where no deadline check reaches, as native code would be
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pipeline, "extract_faces", extract)
    monkeypatch.setattr(pipeline, "STUCK_GRACE_S", 0.5)
    scanner = detector.load(brightness_model, "cpu", runtime="tensorflow", frames=4, input_timeout=1.0)
    started = time.monotonic()
    try:
        results = list(scanner.scan_many([tmp_path / "stuck.mp4", tmp_path / "next.mp4"]))
    finally:
        release.set()
    assert time.monotonic() - started < 30
    stuck, following = results
    assert stuck.status == "error" and stuck.error.startswith(TIMED_OUT) and "--input-timeout" in stuck.error
    assert following.status == "no_face", following.error


# ---- the kill-soak: SIGKILL at random moments, then a rerun, ten times ----

SOAK_INPUTS, SOAK_KILLS = 200, 10


@pytest.fixture(scope="module")
def soak_inputs(tmp_path_factory) -> Path:
    """200 small inputs: noise stills, tiny clips without a face, and a few 1-s face clips."""
    folder = tmp_path_factory.mktemp("soak")
    rng = np.random.default_rng(0)
    import cv2

    face = face_clip(folder / "face00.mp4", seconds=1.0, size="320x240")
    (folder / "astronaut.png").unlink()
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=1", "-pix_fmt", "yuv420p", "-c:v", "libx264",
           "-preset", "ultrafast", str(folder / "tiny00.mp4"))
    for i in range(1, 5):
        shutil.copy(face, folder / f"face{i:02d}.mp4")
    for i in range(1, 20):
        shutil.copy(folder / "tiny00.mp4", folder / f"tiny{i:02d}.mp4")
    for i in range(SOAK_INPUTS - 25):
        cv2.imwrite(str(folder / f"still{i:03d}.png"), rng.integers(0, 256, (32, 32, 3), np.uint8))
    return folder


@pytest.mark.slow
def test_a_scanner_killed_at_ten_random_moments_ends_with_one_whole_row_per_input(soak_inputs, brightness_model,
                                                                                  tmp_path):
    out = tmp_path / "RESULTS"
    args = [sys.executable, str(ROOT / "app.py"), "--input", str(soak_inputs), "--output", str(out),
            "--model", str(brightness_model), "--frames", "4", "-q"]
    rng, kills = random.Random(28), 0
    for _ in range(SOAK_KILLS):
        before = len(rows_of(out)) if (out / "results.csv").exists() else 0
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not (out / ".scanning").exists():
            time.sleep(0.02)  # until it scans: a kill while Python starts tests nothing
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        time.sleep(0.3)
        assert not ffmpegs_under(soak_inputs), ffmpegs_under(soak_inputs)  # none outlives the scanner
        records, torn = read_csv_log(out / "results.csv") if (out / "results.csv").exists() else ([], False)
        assert all(len(r) == len(records[0]) for r in records)  # whole rows (a torn last one is dropped on opening)
        assert len(rows_of(out)) >= before if (out / "results.csv").exists() else True
    assert kills >= SOAK_KILLS // 2, "the batch ended before most kills could land"
    final = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode in (0, 1), final.stderr
    records, torn = read_csv_log(out / "results.csv")
    assert not torn and all(len(r) == len(records[0]) for r in records)
    rows = rows_of(out)  # and no path twice
    assert sorted(rows) == sorted(p.name for p in soak_inputs.iterdir())
    for row in rows.values():
        assert row["status"] in ("ok", "no_face", "error"), row
        assert json.loads((out / row["details"]).read_text())["input"] == row["path"]
    assert sum(r["status"] == "ok" for r in rows.values()) >= 1
    assert not (out / ".scanning").exists() and not list(out.rglob("*.tmp"))
    assert not ffmpegs_under(soak_inputs)
