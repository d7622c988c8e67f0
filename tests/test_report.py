"""Tests for detector.evaluation.report, against values worked out by hand in the comments."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from matplotlib.image import imread

from detector.evaluation.metrics import Metrics, compute_metrics, grouped_metrics, paired_ranking, pick_threshold
from detector.evaluation.report import format_table, write_report

# Running example: two reals (0.1, 0.4) and two fakes (0.35, 0.8).
LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.4, 0.35, 0.8]


def test_metrics_on_running_example() -> None:
    m = compute_metrics(LABELS, SCORES, threshold=0.5)
    assert (m.n, m.n_real, m.n_fake) == (4, 2, 2)
    # Fake/real pairs: 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> 3/4.
    assert m.auc == pytest.approx(0.75)
    # Mean of -log(p of the true class): reals 0.9, 0.6; fakes 0.35, 0.8.
    assert m.log_loss == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    # Predictions at 0.5: real, real, real, fake -> 3 of 4 right; TNR 1, TPR 1/2.
    assert m.accuracy == pytest.approx(0.75)
    assert m.balanced_accuracy == pytest.approx(0.75)
    # ROC points (FPR, TPR): (0,0) (0,.5) (.5,.5) (.5,1) (1,1); at (.5,.5) FPR = FNR = 0.5.
    assert m.eer == pytest.approx(0.5)
    # Ranked: F(0.8) R(0.4) F(0.35) R(0.1); precision at each fake: 1, 2/3 -> (1 + 2/3) / 2.
    assert m.average_precision == pytest.approx(5 / 6)
    assert m.threshold == 0.5


def test_eer_interpolates_between_roc_points() -> None:
    # Reals 0.1, 0.5; fakes 0.5, 0.9. ROC: (0,0) (0,.5) (.5,1) (1,1).
    # FPR - FNR is -0.5 at (0,.5) and +0.5 at (.5,1): halfway there FPR = 0.25, FNR = 0.25.
    m = compute_metrics([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9], threshold=0.5)
    assert m.eer == pytest.approx(0.25)


def test_balanced_accuracy_differs_from_accuracy_on_imbalanced_set() -> None:
    # Threshold above every score: all called real. 3 of 4 right, but TPR 0, TNR 1.
    m = compute_metrics([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.5)
    assert m.accuracy == pytest.approx(0.75)
    assert m.balanced_accuracy == pytest.approx(0.5)


def test_threshold_is_inclusive() -> None:
    m = compute_metrics([0, 1], [0.2, 0.5], threshold=0.5)
    assert m.accuracy == 1.0


def test_perfect_scorer() -> None:
    m = compute_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], threshold=0.5)
    assert m.auc == 1.0
    assert m.eer == 0.0
    assert m.average_precision == 1.0
    assert m.accuracy == m.balanced_accuracy == 1.0


def test_inverted_scorer() -> None:
    # ROC: (0,0) (.5,0) (1,0) (1,.5) (1,1); FPR - FNR first reaches 0 at (1,0): EER 1.
    m = compute_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], threshold=0.5)
    assert m.auc == 0.0
    assert m.eer == pytest.approx(1.0)
    assert m.accuracy == m.balanced_accuracy == 0.0


def test_log_loss_clips_certain_mistakes() -> None:
    # Both videos confidently wrong: each term is -log(1e-6) after clipping.
    m = compute_metrics([0, 1], [1.0, 0.0], threshold=0.5)
    assert m.log_loss == pytest.approx(-math.log(1e-6))


def test_one_class_input_leaves_ranking_metrics_undefined() -> None:
    m = compute_metrics([0, 0, 0], [0.1, 0.6, 0.3], threshold=0.5)
    assert (m.auc, m.log_loss, m.eer, m.average_precision) == (None, None, None, None)
    # 2 of 3 reals below 0.5; balanced accuracy is the recall of the only class present.
    assert m.accuracy == pytest.approx(2 / 3)
    assert m.balanced_accuracy == pytest.approx(2 / 3)


def test_real_videos_called_fake_is_counted_at_the_threshold_with_a_wilson_interval() -> None:
    # 16 reals, 3 at or above the threshold (one exactly on it), and two fakes that do not count
    scores = [0.9, 0.5, 0.7] + [0.1] * 13 + [0.2, 0.95]
    m = compute_metrics([0] * 16 + [1, 1], scores, 0.5)
    assert m.real_called_fake == 3 / 16
    assert (round(m.real_called_fake_low, 3), round(m.real_called_fake_high, 3)) == (0.066, 0.43)  # Wilson, z 1.96
    none = compute_metrics([0] * 9, [0.1] * 9, 0.5)
    assert none.real_called_fake == 0 and none.real_called_fake_low == 0 and 0.29 < none.real_called_fake_high < 0.31
    assert compute_metrics([1, 1], [0.2, 0.9], 0.5).real_called_fake is None  # no reals, no false alarms to count


@pytest.mark.parametrize(
    ("labels", "scores"),
    [([], []), ([0, 1], [0.5]), ([0, 2], [0.1, 0.2]), ([0, 1], [0.1, float("nan")])],
)
def test_invalid_input_rejected(labels: list[int], scores: list[float]) -> None:
    with pytest.raises(ValueError):
        compute_metrics(labels, scores, threshold=0.5)


def test_grouped_metrics_compares_each_method_with_all_reals() -> None:
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.3, 0.9, 0.8, 0.2, 0.4]
    groups = ["real", "real", "Deepfakes", "Deepfakes", "FaceSwap", "FaceSwap"]
    result = grouped_metrics(labels, scores, groups, threshold=0.5)

    assert list(result) == ["all", "real", "Deepfakes", "FaceSwap"]
    assert result["all"] == compute_metrics(labels, scores, 0.5)
    # Deepfakes (0.9, 0.8) vs reals (0.1, 0.3): perfectly separated.
    assert (result["Deepfakes"].n_real, result["Deepfakes"].n_fake) == (2, 2)
    assert result["Deepfakes"].auc == 1.0
    # FaceSwap (0.2, 0.4) vs reals (0.1, 0.3): pairs won 0.2>0.1, 0.4>0.1, 0.4>0.3 -> 3/4.
    assert result["FaceSwap"].n == 4
    assert result["FaceSwap"].auc == pytest.approx(0.75)
    # "real" is just the reals: no AUC, both below threshold.
    assert (result["real"].n, result["real"].auc, result["real"].accuracy) == (2, None, 1.0)


def test_grouped_metrics_keeps_mixed_groups_to_their_own_members() -> None:
    result = grouped_metrics([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.4], ["A", "A", "B", "B"], threshold=0.5)
    assert result["A"].n == 2 and result["A"].auc == 1.0
    assert result["B"].n == 2 and result["B"].auc == 0.0


def test_grouped_metrics_rejects_reserved_name() -> None:
    with pytest.raises(ValueError):
        grouped_metrics([0, 1], [0.1, 0.9], ["all", "x"], threshold=0.5)


def test_paired_ranking_compares_each_fake_with_the_reals_of_its_own_scene_only() -> None:
    rows = [
        {"label": 0, "score": 0.9, "scene": "ff:1"}, {"label": 0, "score": 0.5, "scene": "ff:1"},  # two copies
        {"label": 1, "score": 0.95, "scene": "ff:1"},  # above both
        {"label": 1, "score": 0.5, "scene": "ff:1"},  # below one, tied with the other: 0.5
        {"label": 0, "score": 0.1, "scene": "ff:2"}, {"label": 1, "score": 0.2, "scene": "ff:2"},
        {"label": 1, "score": 0.99, "scene": "ff:3"},  # its original is not in the set
        {"label": 1, "score": 0.0, "scene": None}, {"label": 0, "score": None, "scene": "ff:2"},  # unscored
    ]
    assert paired_ranking(rows) == {"pairs": 5, "fake_above": 3.5, "auc": 0.7, "scenes": 2}
    # the plain AUC also ranks scene 2's fake against scene 1's reals: 5.5 of 9 pairs
    assert compute_metrics([r["label"] for r in rows[:6]], [r["score"] for r in rows[:6]], 0.5).auc == 5.5 / 9
    assert paired_ranking([r for r in rows if r["scene"] != "ff:1" and r["scene"] != "ff:2"]) is None


def test_pick_threshold_prefers_the_tie_closest_to_half() -> None:
    # Running example: cutting at 0.225 (TNR .5, TPR 1), at 0.5 or 0.6 (TNR 1, TPR .5)
    # all give balanced accuracy 0.75, the best; 0.5 itself is closest to 0.5.
    assert pick_threshold(LABELS, SCORES) == 0.5


def test_pick_threshold_finds_the_only_separating_cut() -> None:
    # Reals 0.1, 0.2; fakes 0.3, 0.4: only a cut in (0.2, 0.3] is perfect; midpoint 0.25.
    assert pick_threshold([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.25)


def test_pick_threshold_breaks_ties_away_from_half() -> None:
    # Alternating R F R F at 0.1..0.4: cuts 0.15 and 0.35 both give 0.75, cut 0.25 only 0.5.
    assert pick_threshold([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.35)


def test_pick_threshold_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        pick_threshold([1, 1], [0.2, 0.8])


def test_write_report_writes_parseable_files(tmp_path: Path) -> None:
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.3, 0.9, 0.8, 0.2, 0.4]
    groups = ["real", "real", "Deepfakes", "Deepfakes", "FaceSwap", "FaceSwap"]
    rows = [
        {"video": f"v{i}.mp4", "label": y, "score": s, "group": g}
        for i, (y, s, g) in enumerate(zip(labels, scores, groups))
    ]
    metrics = grouped_metrics(labels, scores, groups, threshold=0.5)
    out = tmp_path / "report"

    write_report(out, rows, metrics)

    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "predictions.csv", "roc.png", "scores.png"]
    with open(out / "predictions.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["video", "label", "score", "group"]
        assert [r["video"] for r in reader] == [f"v{i}.mp4" for i in range(6)]
    payload = json.loads((out / "metrics.json").read_text(), parse_constant=pytest.fail)  # NaN would fail
    assert "generated_at" in payload
    assert payload["metrics"]["real"]["auc"] is None
    assert Metrics(**payload["metrics"]["FaceSwap"]) == metrics["FaceSwap"]
    for name in ("roc.png", "scores.png"):
        image = imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_format_table_lists_every_group() -> None:
    metrics = grouped_metrics([0, 0, 1, 1], SCORES, ["real", "real", "Deepfakes", "Deepfakes"], 0.5)
    lines = format_table(metrics).splitlines()
    assert lines[0].split() == ["group", "n", "AUC", "(95%", "CI)", "log", "loss", "acc", "bal", "acc", "EER", "AP",
                                "real", "called", "FAKE", "(95%", "CI)"]
    assert [line.split()[0] for line in lines[2:]] == ["all", "real", "Deepfakes"]
    assert lines[2].split()[2] == "0.750"
    assert lines[3].split()[2] == "-"  # reals alone have no AUC
    assert len({len(line) for line in lines}) == 1  # columns line up
