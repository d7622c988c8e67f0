"""The library API exactly as README shows it, writers, scan_many, the stage-timing hook, .gif
input and the console script's entry point — against the tiny brightness model."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, face_clip, ffmpeg

import detector
from detector import api, cli
from detector.scan.scanner import STAGES, ScanResult, find_inputs
from detector.scan.video import ffmpeg_info
from detector.output.results import Row

FRAMES = 6


@pytest.fixture(scope="module")
def scanner(brightness_model):
    return detector.load(brightness_model, device="cpu", frames=FRAMES)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    return face_clip(tmp_path_factory.mktemp("api") / "clip.mp4", seconds=1.0, size="320x240", fps=10)


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_readme_snippet_runs_as_written(brightness_model, small_clip, monkeypatch, capsys):
    monkeypatch.setattr(api, "DEFAULT_MODEL_DIR", brightness_model)  # "the bundled model", tiny for the test
    monkeypatch.chdir(small_clip.parent)
    exec(compile(readme_snippet(), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    status, label, p_fake, p_raw, tracks, frames, *_ = lines[0].split()
    assert (status, tracks, frames) == ("ok", "1", "10") and label in ("FAKE", "REAL")  # a 1-s 10-fps clip
    assert float(p_fake) == pytest.approx(float(p_raw))  # the test model has no calibration
    assert lines[1].startswith(label) and str(small_clip) in lines[1]
    assert lines[2].startswith("unreadable") and "missing.mp4" in lines[2]


def test_scan_result_is_frozen_and_typed(scanner, small_clip):
    result = scanner.scan(small_clip)
    assert isinstance(result, ScanResult) and result.status == "ok" and result.error == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "error"
    assert result.n_frames == len(result.frames) == FRAMES and result.n_faces == FRAMES and result.n_tracks == 1
    assert result.p_fake == result.verdict.p_fake and result.p_raw == result.verdict.p_raw
    scores = [face.p_fake for frame in result.frames for face in frame.faces]
    assert result.p_fake == pytest.approx(np.mean(scores), abs=1e-5)
    assert result.tracks[0].n_crops == FRAMES and result.tracks[0].counted
    sides = [max(x2 - x1, y2 - y1) for frame in result.frames for x1, y1, x2, y2 in (f.box for f in frame.faces)]
    assert result.tracks[0].face_side == pytest.approx(np.median(sides), abs=0.01)  # boxes are rounded to 0.001


def test_scan_many_keeps_order_and_never_raises(scanner, small_clip, tmp_path):
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "notes.txt").write_text("not a video")
    paths = [tmp_path / "random.mp4", small_clip, str(tmp_path / "missing.mp4"), tmp_path / "folder.mp4",
             tmp_path / "notes.txt", small_clip]
    results = scanner.scan_many(iter(paths))
    assert not isinstance(results, list) and iter(results) is results  # a generator
    results = list(results)
    assert [r.path for r in results] == [str(Path(p).absolute()) for p in paths]
    assert [r.status for r in results] == ["unreadable", "ok", "unreadable", "unreadable", "unreadable", "ok"]
    assert all(r.error for r in results if r.status != "ok")
    assert results[1].p_fake == results[5].p_fake


def test_writers_make_row_details_and_line_from_one_result(scanner, small_clip):
    result = scanner.scan(small_clip)
    row = detector.get_writer("row")(result)
    assert isinstance(row, Row) and (row.path, row.status, row.label, row.p_fake) == (
        result.path, "ok", result.label, result.p_fake)
    assert (row.n_frames, row.n_faces, row.n_tracks, row.settings) == (FRAMES, FRAMES, 1, scanner.settings_key)
    details = detector.get_writer("json")(result)
    assert json.loads(json.dumps(details, allow_nan=False)) == json.loads(json.dumps(details))
    assert list(details) == ["input", "model", "ffmpeg", "settings", "video", "frames", "verdict", "status", "error",
                             "seconds"]
    assert details["ffmpeg"] == dataclasses.asdict(ffmpeg_info())  # the ffmpeg that decoded it
    assert details["verdict"]["p_raw"] == result.p_raw and details["settings"]["frames"] == FRAMES
    assert details["frames"][0]["faces"][0].keys() == {"box", "detector_prob", "track", "p_fake"}
    line = detector.get_writer("line")(result)
    assert line.startswith(f"{result.label:<4}  p_fake={result.p_fake:.3f}  {result.path}") and "1 track)" in line
    bad = ScanResult(path="/x.mp4", status="unreadable", error="empty file")
    assert detector.get_writer("line")(bad) == "unreadable  /x.mp4  (empty file)"
    assert "video" not in detector.get_writer("json")(bad)
    with pytest.raises(ValueError, match="unknown writer"):
        detector.get_writer("xml")


def test_stage_timing_hook_sees_every_stage(brightness_model, small_clip):
    seen: list[str] = []

    @contextlib.contextmanager
    def timer(stage: str):
        seen.append(stage)
        yield

    scanner = detector.load(brightness_model, device="cpu", frames=FRAMES, timer=timer)
    assert scanner.scan(small_clip).status == "ok"
    assert set(seen) == set(STAGES) == set(detector.STAGES)
    assert seen.count("decode") == FRAMES + 1  # each wait for a frame, and the one that finds the end


def test_load_errors_are_typed(tmp_path, monkeypatch):
    with pytest.raises(detector.ModelError):
        detector.load(tmp_path / "nope", device="cpu")
    monkeypatch.setattr(api, "DEFAULT_MODEL_DIR", tmp_path / "models" / "default")
    with pytest.raises(api.NoDefaultModel, match="no model installed"):
        detector.load(device="cpu")


def test_gif_is_scanned_as_a_video(scanner, small_clip, tmp_path):
    gif = tmp_path / "face.gif"
    ffmpeg("-i", str(small_clip), str(gif))
    assert find_inputs(tmp_path).paths == (gif,)
    result = scanner.scan(gif)
    assert result.status == "ok" and result.video.codec == "gif" and not result.video.is_image
    assert [f.time for f in result.frames] == [0.0, 0.2, 0.4, 0.5, 0.7, 0.9]  # evenly over the 1-s clip
    assert result.n_faces == FRAMES


def test_files_skipped_for_their_extension_are_counted_and_listed(brightness_model, small_clip, tmp_path, capsys,
                                                                  caplog):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(small_clip.read_bytes())
    (folder / "notes.txt").write_text("x")
    (folder / "sub" / "clip.mp4.part").write_text("x")
    inputs = find_inputs(folder)
    assert [p.name for p in inputs.paths] == ["clip.mp4"]
    assert [p.name for p in inputs.skipped] == ["notes.txt", "clip.mp4.part"]
    caplog.set_level("DEBUG", logger="detector")
    code = cli.main(["--input", str(folder), "--output", str(tmp_path / "o"), "--model", str(brightness_model),
                     "--frames", str(FRAMES), "-v"])
    err = capsys.readouterr().err
    assert code == 0
    assert "Done: 1 scanned" in err and "2 other files skipped for the extension (-v lists them)" in err
    listed = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert listed == [f"skipped (not a video or image extension): {p}" for p in inputs.skipped]


def test_summary_line_mentions_skipped_files_only_when_there_are_some():
    summary = cli.BatchSummary(scanned=1, seconds=2.0)
    assert summary.line().endswith("0 unreadable, 0 error")
    summary.ignored = 1
    assert summary.line().endswith("0 error; 1 other file skipped for the extension (-v lists them)")


def test_console_script_entry_point_is_the_cli(capsys):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    target = project["project"]["scripts"]["deepfake-detector"]
    module, _, name = target.partition(":")
    assert (module, name) == ("detector.cli", "main")
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: deepfake-detector COMMAND")
    for command in ("scan", "crops", "train", "evaluate", "robustness", "pool", "select"):
        assert f"\n  {command} " in out


@pytest.mark.parametrize("command", ["scan", "crops", "train", "evaluate", "robustness", "pool", "select"])
def test_each_command_has_its_own_help_under_its_name(command, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepfake-detector {command}")
    assert f"deepfake-detector {command} --" in out  # an example command line


def test_an_unknown_command_is_a_usage_error_that_names_the_commands(capsys):
    assert cli.main(["scna", "--input", "x"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown command 'scna'" in err and "scan, crops, train, evaluate, robustness, pool, select" in err


def test_options_without_a_command_are_scannings_as_in_app_py(tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    assert cli.main(["--input", str(missing), "--output", str(tmp_path / "r")]) == cli.EXIT_USAGE
    assert cli.main(["scan", "--input", str(missing), "--output", str(tmp_path / "r")]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.count(f"--input {missing} does not exist") == 2
