"""The shipped default model: it loads, follows its model.json contract, and scans a clip."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np

from conftest import ROOT, face_clip
from detector.data.datasets import read_split_sides
from detector.evaluation.pool import HELD_OUT, read_pool
from detector.scan.model import DEFAULT_MODEL_DIR, Model


def test_default_model_is_shipped_in_the_original_format():
    for name in ("saved_model.pb", "keras_metadata.pb", "variables/variables.index", "model.json"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    weights = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.glob("variables/*"))
    weights += (DEFAULT_MODEL_DIR / "saved_model.pb").stat().st_size
    assert weights <= 30e6  # float32 EfficientNet-Lite0, no optimizer state


def test_default_model_follows_its_contract():
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert (card["input_size"], card["input_range"], card["output"], card["fake_index"]) == (224, [0.0, 1.0], "softmax", 1)
    assert 0.0 < card["threshold"] < 1.0
    assert card["split"]["by"] == "source identity"
    # Its validation: the trainer's, or for a weight soup its runs and the study that ranked them.
    assert (card["validation"] or {}).get("video_auc") is not None or (
        len(card["soup"]) >= 2 and (DEFAULT_MODEL_DIR / "evaluation" / "study" / "study.json").is_file())
    assert "ImageNet" in card["architecture"] and card["config"]["arch"] == "efficientnet-lite0"
    model = Model(DEFAULT_MODEL_DIR)
    assert model.input_size == 224 and model.contract.threshold == card["threshold"]
    rng = np.random.default_rng(0)
    p = model.predict(rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8))
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


def test_app_without_model_flag_scans_with_the_default_model(tmp_path):
    clip = face_clip(tmp_path / "face.mp4", seconds=1.0)
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "app.py", "--input", str(clip), "--output", str(out), "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (out / "results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert row["status"] == "ok" and row["label"] in ("FAKE", "REAL")
    details = json.loads((out / row["details"]).read_text())
    assert details["model"]["path"] == str(DEFAULT_MODEL_DIR)
    assert details["verdict"]["threshold"] == json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())["threshold"]


def test_default_model_chose_nothing_on_validation_and_is_reported_on_its_held_out_side():
    """The long run's schedule was fixed before it started (docs/long-run.md): the last step's moving
    average, threshold 0.5, no calibration, two heads fused by equal weights. Its validation pool
    and its test side hold nothing it trained on; the recorded evaluation is the test side; and
    model.json names the commit of the model it replaced."""
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    config = card["config"]
    assert config["keep"] == "last" and config["sbi"] == "heads" and card["threshold"] == 0.5
    assert "calibration" not in card and Model(DEFAULT_MODEL_DIR).contract.calibration is None
    assert card["crop_views"] >= 200_000
    sides = read_split_sides(DEFAULT_MODEL_DIR / "split.csv")
    pool = read_pool(DEFAULT_MODEL_DIR / "evaluation" / "pool.csv")
    assert not {v.path.name for v in sides["train"]} & {i.video.path.name for i in pool}
    tested = {v.path.name for v in sides["test"]}
    assert tested and all(i.side == HELD_OUT for i in pool if i.video.path.name in tested)
    assert "--subset test" in card["evaluation"]["command"]
    assert card["evaluation"]["metrics"]["all"]["auc_low"] is not None
    commit = card["replaces"]["commit"]
    assert len(commit) == 40 and int(commit, 16) >= 0
