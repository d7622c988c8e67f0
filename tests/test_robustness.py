"""deepfake-detector robustness: clips re-encoded once, scanned as they are and degraded, compared."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from synthetic import face_clip, ffmpeg
from detector.data.datasets import LabelledVideo


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """real/ and fake/ folders: two bright clips labelled real, two dark ones labelled fake, and a
    file that is no video at all (the brightness model scores dark crops low, so the labels are
    the opposite of its view, which does not matter here)."""
    folder = tmp_path_factory.mktemp("labelled")
    (folder / "real").mkdir()
    (folder / "fake").mkdir()
    items = []
    for i in range(2):
        real = face_clip(folder / "real" / f"r{i}.mp4", seconds=1.0, size="480x360", background="color=c=white")
        fake = folder / "fake" / f"f{i}.mp4"
        ffmpeg("-i", str(real), "-vf", f"eq=brightness=-{0.2 + 0.1 * i}", "-c:v", "libx264", "-preset", "ultrafast",
               str(fake))
        items += [LabelledVideo(real, 0, "tiny", "real", (f"r{i}",)), LabelledVideo(fake, 1, "tiny", "Dark", (f"f{i}",))]
    broken = folder / "fake" / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    items.append(LabelledVideo(broken, 1, "tiny", "Dark", ("b",)))
    return folder, items


def _probe_height(path) -> int:
    from detector.scan.video import probe

    return probe(path).height


def test_degrade_reencodes_once_and_scales_only_down(tmp_path, labelled):
    from detector.evaluation.robustness import DEGRADATIONS, degrade

    _, items = labelled
    source = items[0].path
    small = degrade(source, DEGRADATIONS["360p"], tmp_path / "360p")
    assert _probe_height(small) == 360  # 360 lines already: kept
    tall = face_clip(tmp_path / "tall.mp4", seconds=1.0, size="640x480")
    assert _probe_height(degrade(tall, DEGRADATIONS["360p"], tmp_path / "360p")) == 360
    heavy = degrade(source, DEGRADATIONS["crf40"], tmp_path / "crf40")
    assert _probe_height(heavy) == 360 and heavy.stat().st_size < source.stat().st_size
    written = heavy.stat().st_mtime_ns
    assert degrade(source, DEGRADATIONS["crf40"], tmp_path / "crf40") == heavy
    assert heavy.stat().st_mtime_ns == written  # reused, not encoded again
    assert [p.name for p in (tmp_path / "crf40").iterdir()] == [heavy.name]  # no partial file left
    twin = tmp_path / "other" / source.name  # the same file name in another folder is another clip
    twin.parent.mkdir()
    ffmpeg("-i", str(items[1].path), "-c", "copy", str(twin))
    assert degrade(twin, DEGRADATIONS["crf40"], tmp_path / "crf40") != heavy
    with pytest.raises(RuntimeError, match="could not re-encode"):
        degrade(items[-1].path, DEGRADATIONS["crf40"], tmp_path / "crf40")
    assert len(list((tmp_path / "crf40").iterdir())) == 2  # the two clips, no partial file left


def test_robustness_compares_each_form_with_the_clips_as_they_are(tmp_path, labelled, brightness_model):
    from detector.evaluation.robustness import AS_IS, DEGRADATIONS, robustness
    from detector.scan.model import Model
    from detector.scan.scanner import Settings

    _, items = labelled
    out = tmp_path / "robust"
    chosen = [DEGRADATIONS["crf40"], DEGRADATIONS["360p"]]
    outcomes = robustness(Model(brightness_model), items, out, chosen, Settings(frames=4), progress=False)
    assert [o.name for o in outcomes] == [AS_IS, "crf40", "360p"]
    with (out / "robustness.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(items)
    assert rows[-1][AS_IS] == rows[-1]["crf40"] == ""  # the broken file: no score in any form, the rest go on
    for outcome in outcomes:
        assert outcome.n == 4 and outcome.errors == 1
        scores = [float(r[outcome.name]) for r in rows[:4]]
        deltas = [abs(s - float(r[AS_IS])) for s, r in zip(scores, rows)]
        if outcome.name == AS_IS:
            assert outcome.mean_delta == 0 and outcome.changed == 0
        else:
            assert outcome.mean_delta == pytest.approx(sum(deltas) / 4, abs=1e-6)
            assert outcome.max_delta == pytest.approx(max(deltas), abs=1e-6)
            # a re-encode keeps a clip's brightness, so the brightness model's scores barely move
            assert outcome.max_delta < 0.05
        # the dark clips (labelled fake) score lower than the bright ones: AUC 0 in every form
        assert outcome.auc == 0.0
    for name in (AS_IS, "crf40", "360p"):
        assert (out / name / "predictions.csv").stat().st_size > 0
    report = json.loads((out / "robustness.json").read_text())
    assert [o["name"] for o in report["outcomes"]] == [AS_IS, "crf40", "360p"]
    assert report["degradations"]["crf40"]["ffmpeg"][-4:] == ["-crf", "40", "-pix_fmt", "yuv420p"]
    # A second run finds every clip encoded and scanned, and gives the same table (scores read back
    # from results.csv, to its precision).
    again = robustness(Model(brightness_model), items, out, chosen, Settings(frames=4), progress=False)
    for a, b in zip(again, outcomes):
        assert (a.name, a.n, a.errors, a.changed) == (b.name, b.n, b.errors, b.changed)
        assert a.mean_delta == pytest.approx(b.mean_delta, abs=1e-5) and a.log_loss == pytest.approx(b.log_loss, abs=1e-5)


def test_command_line_reads_a_folder_and_says_what_is_wrong(tmp_path, labelled, brightness_model):
    folder, _ = labelled
    out = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "detector", "robustness", "--model", str(brightness_model),
                           "--data", str(folder), "--out", "cli", "--degrade", "crf23", "--frames", "4"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # a relative --out
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "robustness.json").exists() and len(list((out / "crf23" / "clips").iterdir())) == 4
    assert "verdicts changed" in proc.stdout and "crf23" in proc.stdout and "360p" not in proc.stdout
    assert "(+1 not scored)" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "detector", "robustness", "--model", str(brightness_model),
                           "--data", str(tmp_path / "nowhere"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no such dataset folder" in proc.stderr and "Traceback" not in proc.stderr
