"""The validation pool and the pre-registered choices: identity splits, temperature, cluster
bootstrap, the aggregate rule and the cross-group calibration check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.scan.aggregation import Calibration
from detector.evaluation.evaluate import fit_temperature
from detector.evaluation.pool import HELD_OUT, VAL, PoolItem, build_pool, read_pool, write_pool
from detector.evaluation.selection import (
    Comparison,
    Estimate,
    calibration_checks,
    choose_aggregate,
    install,
    resamples,
)
from detector.data.crops import without
from detector.data.datasets import LabelledVideo, read_face_photos, write_split


def _video(name: str, label: int, dataset: str = "FF++", identities: tuple[str, ...] = ()) -> LabelledVideo:
    return LabelledVideo(Path("/data/videos") / name, label, dataset, "real" if label == 0 else "Deepfakes",
                         identities)


def test_pool_takes_the_model_val_and_splits_new_identities_never_its_train(tmp_path):
    trained = [_video("FFPP__a__Deepfakes__100_101.mp4", 1, identities=("ff:100", "ff:101")),
               _video("FFPP__a__youtube__100.mp4", 0, identities=("ff:100",))]
    val = [_video("FFPP__a__youtube__200.mp4", 0, identities=("ff:200",)),
           _video("other__x.mp4", 0, "other", ("other__x",))]
    test = [_video("FFPP__a__youtube__300.mp4", 0, identities=("ff:300",))]
    write_split(tmp_path / "split.csv", trained, val, test)
    new = [f"FFPP__b__youtube__{i}.mp4,real,FF++," for i in range(400, 408)]
    new += [f"FFPP__b__Deepfakes__{i}_{i + 1 if i % 2 == 0 else i - 1}.mp4,fake,FF++,Deepfakes" for i in range(400, 408)]
    rows = [f"{v.path.name},{'fake' if v.label else 'real'},{v.dataset},{'' if v.label == 0 else 'Deepfakes'}"
            for v in trained + val + test]
    (tmp_path / "manifest.csv").write_text("file,label,dataset_of_origin,manipulation\n" + "\n".join(rows + new) + "\n")
    stills = tmp_path / "dfdc"
    for kind in ("real", "fake"):
        (stills / kind).mkdir(parents=True)
    index = ["file,label,method,identity"]
    for i in range(10):
        for kind in ("real", "fake"):
            (stills / kind / f"{i}.jpg").write_bytes(b"x")
            index.append(f"{kind}/{i}.jpg,{kind},{'DFDC' if kind == 'fake' else ''},src{i}")
    (stills / "index.csv").write_text("\n".join(index) + "\n")

    items = build_pool(tmp_path / "manifest.csv", tmp_path / "split.csv", stills)
    by_name = {i.video.path.name: i for i in items}
    assert not {v.path.name for v in trained} & set(by_name)
    assert (by_name["FFPP__a__youtube__200.mp4"].group, by_name["FFPP__a__youtube__200.mp4"].side) == ("FF++ (model val)", VAL)
    assert by_name["other__x.mp4"].group == "other (model val)"
    assert (by_name["FFPP__a__youtube__300.mp4"].group, by_name["FFPP__a__youtube__300.mp4"].side) == ("FF++ (model test)", HELD_OUT)
    fresh = [i for i in items if i.group == "FF++ new"]
    assert len(fresh) == 16
    sides = {side: {ident for i in fresh if i.side == side for ident in i.video.identities} for side in (VAL, HELD_OUT)}
    assert sides[VAL] and sides[HELD_OUT] and not sides[VAL] & sides[HELD_OUT]
    crops = [i for i in items if i.group == "DFDC crops"]
    assert crops and all(i.side == VAL and i.level == "crops" for i in crops)
    pairs = {i.video.identities for i in crops}
    assert len(crops) == 2 * len(pairs) and len(pairs) == 3  # a real with its own fake, 30% of 10 sources
    write_pool(tmp_path / "pool.csv", items)
    assert read_pool(tmp_path / "pool.csv") == items
    assert build_pool(tmp_path / "manifest.csv", tmp_path / "split.csv", stills) == items  # seeded

    # Before a training run has a split: only the DFDC group, the same one, which the crop builder
    # then leaves out of the training crops.
    early = build_pool(tmp_path / "manifest.csv", None, stills)
    assert early == crops
    write_pool(tmp_path / "dfdc_validation.csv", early)
    kept = without(read_face_photos(stills), [tmp_path / "dfdc_validation.csv"])
    assert len(kept) == 20 - len(crops)
    assert not {v.path.resolve() for v in kept} & {i.video.path.resolve() for i in crops}


def test_temperature_recovers_a_known_temperature_and_has_no_bias():
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 3, 20000)
    labels = (rng.random(logit.size) < 1 / (1 + np.exp(-logit / 2.0))).astype(int)  # true T = 2
    calibration = fit_temperature(list(labels), list(1 / (1 + np.exp(-logit))))
    assert calibration.bias == 0.0 and calibration.scale == pytest.approx(0.5, abs=0.03)
    assert calibration(0.5) == pytest.approx(0.5)


def test_resamples_draw_a_fake_with_its_own_original_within_its_group():
    items = [PoolItem(_video(f"{n}.mp4", label, identities=ids), group, VAL)
             for n, label, ids, group in [("a", 0, ("ff:1",), "g1"), ("b", 1, ("ff:1", "ff:2"), "g1"),
                                          ("c", 0, ("ff:3",), "g1"), ("d", 0, ("x",), "g2"), ("e", 1, ("y",), "g2")]]
    for draw in resamples(items, n=200):
        counts = np.bincount(draw, minlength=5)
        assert counts[0] == counts[1]  # scene ff:1 (original and fake) always together
        assert counts[0] + counts[2] == 2 and counts[3] + counts[4] == 2  # each group keeps its 2 scenes


def _comparison(name: str, low: float, high: float) -> Comparison:
    return Comparison(name, "track-max", Estimate((low + high) / 2, low, high))


def test_the_aggregate_rule_keeps_the_incumbent_on_a_tie_and_prefers_the_simpler_winner():
    tie = {m: _comparison(m, -0.05, 0.02) for m in ("mean", "large-max", "face-weighted")}
    loss = {"track-max": 0.6, "mean": 0.58, "large-max": 0.57, "face-weighted": 0.56}
    assert choose_aggregate(tie, tie, lambda a, b: _comparison(a, -1, 1), loss)[0] == "track-max"
    win = {**tie, "large-max": _comparison("large-max", -0.06, -0.01), "face-weighted": _comparison("face-weighted", -0.07, -0.02)}
    # both beat it; face-weighted is lower but ties with the simpler large-max
    assert choose_aggregate(win, tie, lambda a, b: _comparison(a, -0.02, 0.01), loss)[0] == "large-max"
    # ... unless it is lower beyond the noise
    assert choose_aggregate(win, tie, lambda a, b: _comparison(a, 0.01, 0.02) if a == "large-max"
                            else _comparison(a, -0.02, -0.01), loss)[0] == "face-weighted"
    # AUC decides only when log loss does not, and never for a rule whose log loss is worse
    auc = {**tie, "mean": Comparison("mean", "track-max", Estimate(0.05, 0.01, 0.09))}
    assert choose_aggregate(tie, auc, lambda a, b: _comparison(a, -1, 1), loss)[0] == "mean"
    worse = {**tie, "mean": _comparison("mean", 0.01, 0.05)}
    assert choose_aggregate(worse, auc, lambda a, b: _comparison(a, -1, 1), loss)[0] == "track-max"


def test_a_calibration_that_hurts_a_group_it_was_not_fitted_on_fails_the_check():
    # g1 and g2: right but timid (0.4 / 0.6), so a fit on them sharpens; g3: wrong at 0.4 / 0.6
    labels = np.array([0, 1] * 15)
    raw = np.array([0.4, 0.6] * 15)
    raw[20:] = [0.6, 0.4] * 5
    groups = np.array(["g1"] * 10 + ["g2"] * 10 + ["g3"] * 10, dtype=object)
    crops = (np.array([0, 1] * 20), np.array([0.55, 0.45] * 20))  # wrong way round too
    checks = {c.group: c for c in calibration_checks(labels, raw, groups, fit_temperature, crops)}
    assert checks["g3"].fitted_on == ("g1", "g2") and checks["g3"].calibration.scale > 1
    assert not checks["g3"].passed and checks["g3"].after > checks["g3"].before
    assert not checks["DFDC crops"].passed
    # a group the others agree with passes: the fit on g2 and the wrong g3 tempers g1
    assert checks["g1"].calibration.scale < 1e-2 or checks["g1"].after <= checks["g1"].before


def test_install_writes_the_calibration_or_removes_it(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"threshold": 0.53, "calibration": {"scale": 2.45, "bias": -0.2}}))
    result = {"aggregate": {"chosen": "large-max", "why": "because"},
              "calibration": {"method": "temperature", "shipped": {"scale": 0.8, "bias": 0.0}, "fitted_on": ["g1"],
                              "clips": 10, "fakes": 5,
                              "checks": [{"group": "g1", "before": 0.7, "after": 0.6, "passed": True}]}}
    install(tmp_path, result, "cmd")
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["calibration"] == {"scale": 0.8, "bias": 0.0} and card["threshold"] == 0.5
    assert card["selection"]["aggregate"] == "large-max" and card["calibration_fit"]["videos"] == 10
    install(tmp_path, {**result, "calibration": {**result["calibration"], "shipped": None}}, "cmd")
    card = json.loads((tmp_path / "model.json").read_text())
    assert "calibration" not in card and "uncalibrated" in card["calibration_fit"]["method"]
    assert Calibration(**{"scale": 0.8, "bias": 0.0})(0.5) == pytest.approx(0.5)


def test_decide_reports_every_group_and_lets_no_small_face_decide_when_that_wins():
    """Synthetic pool: a face model that is right about main faces, with suspicious small background
    faces in a third of the real clips; large-max (or a rule like it) must win and the report must
    carry every group, the checks and the held-out side."""
    from detector.evaluation.selection import ClipCrops, decide, markdown, plain

    rng = np.random.default_rng(1)
    items, clips = [], []
    for side in (VAL, HELD_OUT):
        for group in ("FF++ new", "other"):
            for k in range(24):
                label = k % 2
                item = PoolItem(_video(f"{side}{group}{k}.mp4", label, identities=(f"{side}{group}{k}",)), group, side)
                main = np.clip(rng.normal(0.35 + 0.3 * label, 0.15, 8), 0.01, 0.99)
                scores, tracks, sides = list(main), [0] * 8, [200.0] * 8
                if label == 0 and k % 3 == 0:  # a small background face the model calls fake
                    scores += [0.97] * 8
                    tracks += [1] * 8
                    sides += [60.0] * 8
                items.append(item)
                clips.append(ClipCrops(item, np.array(scores), tracks, np.array(sides), 8))
    result = decide(items, clips, {}, Calibration(2.45, -0.2), 0.53)
    assert result["aggregate"]["chosen"] in ("large-max", "face-weighted", "mean")
    assert set(result["aggregates"]) == {"track-max", "mean", "large-max", "face-weighted"}
    assert [r["group"] for r in result["validation"]] == ["FF++ new", "other", "pooled"]
    assert {c["group"] for c in result["calibration"]["checks"]} == {"FF++ new", "other"}
    assert [r["group"] for r in result["held_out"]["rows"]] == ["FF++ new", "other", "pooled"]
    assert result["crops"] is None  # no stills
    text = markdown(result)
    assert f"**Chosen rule: `{result['aggregate']['chosen']}`**" in text and "| pooled | 24+24 |" in text
    # the disagreements are exactly the reals with a small suspicious background face
    assert {d["clip"] for d in result["disagreements"]} == {
        f"{side}{group}{k}" for side in (VAL, HELD_OUT) for group in ("FF++ new", "other") for k in range(0, 24, 6)}
    assert "| track-max raw AUC |" in text
    json.dumps(plain(result))
