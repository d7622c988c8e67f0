"""Scanning on Ray with real Ray processes: the command line's --ray against a cluster that
`ray start --head` runs on the loopback address, a private Ray whose workers are killed mid-batch
(SIGKILL, as the kernel's OOM killer would), and the usage errors.

Every Ray started here is this test's own: the cluster in a session of its own, stopped through
`ray start` and then by killing what is left of that session; the private one by
RayScanner.close(). Only workers descended from this test process are ever killed.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT
from synthetic import face_clip

import detector
from detector import api, cli

FRAMES = 6
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install -r requirements-ray.txt)")


# ---- helpers: this test's Ray processes ----

def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            found[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return found


def our_workers(title: str) -> list[int]:
    """This process's descendants whose process title (Ray sets it to ray::Class.method while a
    task runs) starts with `title`."""
    processes, ours = _processes(), []
    for pid, (_, cmdline) in processes.items():
        parent = pid
        while parent in processes and parent != os.getpid():
            parent = processes[parent][0]
        if parent == os.getpid() and cmdline.startswith(title):
            ours.append(pid)
    return ours


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_rows(folder: Path) -> dict[str, dict]:
    with (folder / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["path"] for row in rows}) == len(rows), "one row per input"
    return {row["path"]: row for row in rows}


def without_seconds(result: api.ScanResult) -> api.ScanResult:
    return dataclasses.replace(result, seconds=0.0)


# ---- fixtures ----

# A test cluster: loopback only (Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 as "one machine,
# 127.0.0.1"), token authentication with a token of its own, not the user's ~/.ray/auth_token.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


@pytest.fixture
def cluster() -> Iterator[str]:
    """`ray start --head` with two CPUs on 127.0.0.1; its address."""
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit in 107 bytes
    with (temp / "head.log").open("w") as log:
        head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={temp}"],
            env={**os.environ, **RAY_ENV}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while head.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"ray start --head did not come up:\n{(temp / 'head.log').read_text()[-3000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # `ray start --block` then stops the GCS, the raylet and the workers
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # whatever is left in its session
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_scanner(brightness_model):
    return detector.load(brightness_model, device="cpu", frames=FRAMES)


@pytest.fixture(scope="module")
def ray_scanner(brightness_model) -> Iterator:
    """Two workers on a private Ray on this machine, shared by the tests that kill them."""
    from detector.distributed import RayScanner

    with RayScanner(brightness_model, "cpu", workers=2, frames=FRAMES) as scanner:
        yield scanner


# ---- the command line ----

@needs_ray
def test_cli_on_a_cluster_writes_what_a_local_scan_writes(cluster, clip, noface_clip, brightness_model,
                                                         local_scanner, tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    inputs = [clip, noface_clip, tmp_path / "missing.mp4", tmp_path / "notes.txt"]
    (tmp_path / "list.txt").write_text("".join(f"{path}\n" for path in inputs))
    list(api.scan_batch(local_scanner, inputs, api.ResultsFolder(tmp_path / "local")))

    run = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--input", str(tmp_path / "list.txt"), "--output",
         str(tmp_path / "ray"), "--model", str(brightness_model), "--frames", str(FRAMES), "--device", "cpu",
         "--ray", cluster, "--workers", "2", "-v"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **RAY_ENV})
    assert run.returncode == 1, run.stderr  # the missing file and the text file are unreadable
    assert "Done: 4 scanned" in run.stderr and f"model {brightness_model.resolve()}" in run.stderr

    local, ray = read_rows(tmp_path / "local"), read_rows(tmp_path / "ray")
    assert list(ray) == [str(path) for path in inputs]
    assert [row["status"] for row in ray.values()] == ["ok", "no_face", "unreadable", "unreadable"]
    for path, row in ray.items():
        assert {**row, "seconds": ""} == {**local[path], "seconds": ""}
        local_details, ray_details = (json.loads((tmp_path / folder / row["details"]).read_text())
                                      for folder in ("local", "ray"))
        assert {**ray_details, "seconds": 0} == {**local_details, "seconds": 0}
    # the workers' resume key is a local scanner's: a local run over the Ray results has nothing to do
    assert all(item.skipped for item in api.scan_batch(local_scanner, inputs, api.ResultsFolder(tmp_path / "ray")))


def test_workers_without_ray_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--input", "x.mp4", "--output", "out", "--workers", "2"])
    assert stopped.value.code == cli.EXIT_USAGE
    assert "--workers needs --ray" in capsys.readouterr().err


def test_ray_without_the_package_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds where it is not installed
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--input", "x.mp4", "--output", "out", "--ray"])
    assert stopped.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert 'pip install ".[ray]"' in err and "pip install -r requirements-ray.txt" in err


# ---- workers that die ----

@needs_ray
def test_a_worker_killed_mid_batch_loses_no_input(ray_scanner, local_scanner, clip, noface_clip, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="detector")  # an earlier in-process -q run may have raised it
    inputs = [shutil.copy(clip, tmp_path / f"clip{i}.mp4") for i in range(6)] + [noface_clip]
    killed: list[int] = []
    done = threading.Event()

    def kill_one_while_scanning() -> None:
        while not killed and not done.is_set():
            for pid in our_workers("ray::ScanWorker.scan")[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_while_scanning, daemon=True)
    killer.start()
    try:
        items = list(api.scan_batch(ray_scanner, inputs, api.ResultsFolder(tmp_path / "ray")))
    finally:
        done.set()
        killer.join()
    assert killed, "no worker was seen scanning"
    assert "a Ray worker died while scanning" in caplog.text
    assert [item.path for item in items] == [Path(path) for path in inputs]
    expected = list(local_scanner.scan_many(inputs))
    assert [without_seconds(item.result) for item in items] == [without_seconds(result) for result in expected]
    assert list(read_rows(tmp_path / "ray")) == [str(path) for path in inputs]


@needs_ray
def test_an_input_that_kills_its_worker_every_time_ends_as_an_error(ray_scanner, clip, noface_clip, tmp_path):
    # A good clip whose every decoding kills the worker running it: the watchdog below finds the
    # ffprobe/ffmpeg reading it and SIGKILLs that process's parent, our Ray worker. Long and large
    # enough that its decoding cannot end between two looks. (Not a FIFO: the scanner refuses
    # those before opening them.)
    crash = face_clip(tmp_path / "crash.mp4", seconds=20, size="1280x720")
    kills: list[int] = []
    stop = threading.Event()

    def reading_it() -> list[int]:
        """Our workers whose child process has the clip on its command line."""
        workers = set(our_workers("ray::ScanWorker"))
        found = []
        for pid, (parent, _) in _processes().items():
            if parent in workers:
                try:
                    if str(crash).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.append(parent)
                except OSError:
                    continue
        return sorted(set(found))

    def kill_whoever_reads_it() -> None:
        while not stop.is_set():
            found = reading_it()
            for pid in found:
                os.kill(pid, signal.SIGKILL)
            kills.extend(found)
            while found and set(found) & set(our_workers("ray::ScanWorker")):  # until it is gone
                time.sleep(0.01)
            time.sleep(0.005)

    watchdog = threading.Thread(target=kill_whoever_reads_it, daemon=True)
    watchdog.start()
    try:
        results = list(ray_scanner.scan_many([clip, crash, noface_clip]))
    finally:
        stop.set()
        watchdog.join(10)
    assert [r.status for r in results] == ["ok", "error", "no_face"]
    assert len(kills) == 2
    assert results[1].error.startswith("a Ray worker died each of the 2 times it scanned this input (last: ")
    assert results[1].settings_key == ray_scanner.settings_key and results[1].path == str(crash)
