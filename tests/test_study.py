"""A retrain's tools: the split that keeps the pool out of training, the weight soup, and the
study that ranks runs on the validation pool and applies the pre-registered rules."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, build_brightness_model, expected_p_fake
from detector.data.crops import without
from detector.data.datasets import LabelledVideo, read_split_sides, write_split
from detector.evaluation.pool import CROPS, HELD_OUT, VAL, PoolItem, extended_split, write_pool
from detector.evaluation.selection import Estimate
from detector.evaluation.study import CLIPS, decide, markdown, study


def _video(name: str, label: int, identity: str, dataset: str = "FF++") -> LabelledVideo:
    return LabelledVideo(Path("/data/videos") / name, label, dataset, "real" if label == 0 else "Deepfakes", (identity,))


def test_extended_split_adds_the_pool_sides_and_trains_on_none_of_them(tmp_path):
    train, val, test = [_video("t.mp4", 0, "ff:1")], [_video("v.mp4", 1, "ff:2")], [_video("h.mp4", 0, "ff:3")]
    write_split(tmp_path / "split.csv", train, val, test)
    new_val, new_held = _video("n1.mp4", 1, "ff:4"), _video("n2.mp4", 0, "ff:5")
    items = [PoolItem(val[0], "FF++ (model val)", VAL), PoolItem(test[0], "FF++ (model test)", HELD_OUT),
             PoolItem(new_val, "FF++ new", VAL), PoolItem(new_held, "FF++ new", HELD_OUT),
             PoolItem(_video("d.jpg", 0, "src1", "dfdc_crops"), "DFDC crops", VAL, CROPS)]
    sides = extended_split(tmp_path / "split.csv", items)
    assert sides["train"] == train  # nothing new trains; DFDC stills are not clips of the split
    assert sides["val"] == val + [new_val] and sides["test"] == test + [new_held]
    write_split(tmp_path / "extended.csv", sides["train"], sides["val"], sides["test"])
    assert read_split_sides(tmp_path / "extended.csv") == sides


def test_crops_only_keeps_what_a_list_names_and_exclude_the_rest(tmp_path):
    items = [_video(f"{i}.mp4", 0, str(i)) for i in range(4)]
    (tmp_path / "list.csv").write_text("path,label\n/data/videos/1.mp4,0\n/data/videos/3.mp4,0\n")
    kept = without(items, [tmp_path / "list.csv"], keep_listed=True)
    left = without(items, [tmp_path / "list.csv"])
    assert [v.path.name for v in kept] == ["1.mp4", "3.mp4"] and [v.path.name for v in left] == ["0.mp4", "2.mp4"]


def _two_models(tmp_path):
    """Two brightness models whose head weights differ: the soup's must be their mean."""
    import tf_keras as keras

    a = build_brightness_model(tmp_path / "a")
    b = tmp_path / "b"
    model = keras.models.load_model(str(a), compile=False)
    model.set_weights([w * 3.0 for w in model.get_weights()])
    model.save(str(b))
    (b / "model.json").write_text(json.dumps({"threshold": 0.4, "name": "b", "split": {"seed": 1}}))
    return a, b


def test_soup_averages_the_weights_and_keeps_the_contract(tmp_path):
    import tf_keras as keras

    from detector.training.soup import average_weights, soup

    a, b = _two_models(tmp_path)
    models = [keras.models.load_model(str(f), compile=False) for f in (a, b)]
    out = soup([b, a], tmp_path / "soup", command="deepfake-detector soup …")
    souped = keras.models.load_model(str(out), compile=False)
    for mine, wa, wb in zip(souped.get_weights(), *(m.get_weights() for m in models)):
        np.testing.assert_allclose(mine, (wa + wb) / 2, rtol=1e-6)
    card = json.loads((out / "model.json").read_text())
    assert card["threshold"] == 0.5 and card["fake_index"] == 1 and card["input_size"] == 224
    assert card["soup"] == [str(b), str(a)] and "uniform soup of 2 runs" in card["name"]
    assert card["split"] == {"seed": 1}  # the first ingredient's data card
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="differ in architecture"):
        average_weights([models[0], other])


def test_soup_command_refuses_one_model_and_folders_that_are_not_tf_keras(tmp_path):
    a, _ = _two_models(tmp_path)
    (tmp_path / "plain").mkdir()
    for args, message in (([a], "at least two"), ([a, tmp_path / "plain"], "not a tf_keras SavedModel")):
        cmd = [sys.executable, "-m", "detector", "soup", *[f"--model={m}" for m in args], "--out", str(tmp_path / "s")]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "s").exists()


def _estimate(value: float) -> Estimate:
    return Estimate(value, value - 0.1, value + 0.1)


def _table(values: dict[str, float]) -> dict:
    return {name: {CLIPS: {"auc": _estimate(v), "log_loss": _estimate(0.5)}} for name, v in values.items()}


@pytest.mark.parametrize("values, ship, candidate", [
    ({"s0": 0.80, "s1": 0.84, "s2": 0.82, "soup": 0.83, "old": 0.85}, "soup", "soup"),  # within the spread (0.04)
    ({"s0": 0.80, "s1": 0.84, "s2": 0.82, "soup": 0.83, "old": 0.88}, "old", "soup"),  # below by more
    ({"s0": 0.80, "s1": 0.84, "s2": 0.82, "soup": 0.79, "old": 0.70}, "s0", "s0"),  # soup below every seed: seed 0
    ({"s0": 0.80, "s1": 0.84, "s2": 0.82, "soup": 0.80, "old": 0.70}, "soup", "soup"),  # a tie with the lowest
])
def test_decide_applies_rules_one_and_two(values, ship, candidate):
    decision = decide(_table(values), ["s0", "s1", "s2"], "soup", "old")
    assert (decision["ship"], decision["candidate"]) == (ship, candidate)
    assert decision["seed_spread"] == pytest.approx(0.04)
    assert decision["why"]


def _crop_folder(folder: Path, clips: dict[str, tuple[int, list[int]]]) -> None:
    """A crop index (as deepfake-detector crops writes it) with flat grey crops of given brightness."""
    folder.mkdir()
    rows = [["crop", "video", "label", "dataset", "method", "identities", "frame", "time", "track", "landmarks",
             "region", "region_box", "mesh"]]
    for video, (label, levels) in clips.items():
        for k, level in enumerate(levels):
            name = f"{Path(video).stem}_{k}.png"
            cv2.imwrite(str(folder / name), np.full((224, 224, 3), level, np.uint8))
            rows.append([name, video, label, "FF++", "x", Path(video).stem, k, k, 0, " ".join(["0"] * 10), "", "", ""])
    with (folder / "index.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_study_scores_the_val_side_from_crops_and_writes_the_decision(tmp_path):
    model = build_brightness_model(tmp_path / "m")
    reals = [(f"/data/r{i}.mp4", 0, [40 + 10 * i] * 20) for i in range(4)]  # 20 crops: 16 are used
    real_p = [expected_p_fake(np.full((2, 2, 3), 40 + 10 * i, np.uint8)) for i in range(4)]
    # a model calling FAKE between the second and third real's scores: half its reals are false alarms
    strict = build_brightness_model(tmp_path / "strict", contract={"threshold": (real_p[1] + real_p[2]) / 2})
    fakes = [(f"/data/f{i}.mp4", 1, [150 + 10 * i, 170 + 10 * i]) for i in range(4)]
    clips = {v: (label, levels) for v, label, levels in reals + fakes}
    clips["/data/held.mp4"] = (1, [10])  # held out: never scored, whatever its crops
    _crop_folder(tmp_path / "crops", clips)
    items = [PoolItem(LabelledVideo(Path(v), label, "FF++", "x", (Path(v).stem,)), "FF++ (model val)", VAL)
             for v, label, _ in reals + fakes]
    items.append(PoolItem(LabelledVideo(Path("/data/held.mp4"), 1, "FF++", "x", ("held",)), "FF++ (model test)", HELD_OUT))
    items.append(PoolItem(LabelledVideo(Path("/data/noface.mp4"), 0, "FF++", "x", ("nf",)), "FF++ (model val)", VAL))
    write_pool(tmp_path / "pool.csv", items)

    result = study({"a": model, "b": model, "soup": model, "old": strict}, tmp_path / "pool.csv", [tmp_path / "crops"],
                   ["a", "b"], ["soup"], None, "soup", "old")
    assert result["missing"] == 1 and len(result["items"]) == 8 and "/data/held.mp4" not in result["items"]
    assert result["sizes"][CLIPS] == (4, 4)
    fake0 = result["items"].index("/data/f0.mp4")
    mean_p = np.mean([expected_p_fake(np.full((2, 2, 3), v, np.uint8)) for v in (150, 170)])
    assert result["scores"]["a"][fake0] == pytest.approx(mean_p, abs=1e-3)  # the mean of its crops' scores
    assert result["table"]["a"][CLIPS]["auc"].value == 1.0
    assert result["table"]["a"][CLIPS]["real_called_fake"].value == 0.0 and max(real_p) < 0.5
    assert result["table"]["old"][CLIPS]["real_called_fake"].value == 0.5  # each model at its own threshold
    assert result["decision"]["ship"] == "soup" and result["decision"]["seed_spread"] == 0.0
    same = result["ablations"]["soup"][CLIPS]
    assert same["difference"].value == 0.0 and not same["counts"]
    text = markdown(result)
    assert "Ships: **soup**" in text and "FF++ (model val)" in text


def test_the_recorded_command_line_quotes_its_arguments_for_a_shell():
    from detector.runtime import command_line

    assert command_line("soup", ["--model", "runs/seed 0/model", "--out", "it's"]) == \
        "deepfake-detector soup --model 'runs/seed 0/model' --out 'it'\"'\"'s'"
