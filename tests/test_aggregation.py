"""Stage 4 — verdicts: large-max, track-max, mean and face-weighted, passer-by tracks, threshold, and the reason text."""
from __future__ import annotations

import numpy as np
import pytest

from detector.scan.aggregation import MIN_TRACK_SHARE, Calibration, aggregate


def test_one_track_is_its_mean():
    v = aggregate(np.array([0.2, 0.4, 0.6]), [0, 0, 0], 3, 0.5)
    assert v.p_fake == pytest.approx(0.4)
    assert v.label == "REAL" and v.aggregate == "large-max" and v.threshold == 0.5
    assert len(v.tracks) == 1 and v.tracks[0].n_crops == 3 and v.tracks[0].counted
    assert "one face track" in v.reason and "0.400" in v.reason and "REAL" in v.reason


def test_track_max_is_not_diluted_by_real_faces():
    # 10 frames: track 0 (real, 10 crops, 0.1) and track 1 (swapped, 10 crops, 0.9)
    scores = np.array([0.1] * 10 + [0.9] * 10)
    tracks = [0] * 10 + [1] * 10
    v = aggregate(scores, tracks, 10, 0.5)
    assert v.p_fake == pytest.approx(0.9) and v.label == "FAKE"
    assert "track 1" in v.reason and "2 face tracks" in v.reason and "FAKE" in v.reason
    m = aggregate(scores, tracks, 10, 0.5, "mean")
    assert m.p_fake == pytest.approx(0.5) and m.label == "FAKE"  # at the threshold counts as fake
    assert m.aggregate == "mean" and "mean of all 20" in m.reason
    m2 = aggregate(scores, tracks, 10, 0.51, "mean")
    assert m2.label == "REAL" and "<" in m2.reason


def test_passer_by_tracks_are_ignored_by_track_max_only():
    n_frames = 32
    min_crops = int(np.ceil(MIN_TRACK_SHARE * n_frames))  # 4
    scores = np.array([0.2] * 30 + [0.99] * (min_crops - 1))
    tracks = [0] * 30 + [1] * (min_crops - 1)
    v = aggregate(scores, tracks, n_frames, 0.5)
    assert v.p_fake == pytest.approx(0.2) and v.label == "REAL"
    assert [t.counted for t in v.tracks] == [True, False]
    assert v.tracks[1].p_fake == pytest.approx(0.99)  # still reported
    assert "1 track(s) seen in fewer than 4 frames ignored" in v.reason
    # seen in enough frames, the same face counts
    scores2 = np.append(scores, 0.99)
    v2 = aggregate(scores2, tracks + [1], n_frames, 0.5)
    assert v2.p_fake == pytest.approx(0.99) and v2.label == "FAKE"
    # the mean uses every crop
    assert aggregate(scores, tracks, n_frames, 0.5, "mean").p_fake == pytest.approx(scores.mean())


def test_track_max_names_a_small_deciding_face_in_the_reason_and_the_verdict_stands():
    scores, tracks = np.array([0.3] * 10 + [0.8] * 10), [0] * 10 + [1] * 10
    sides = [220.0] * 10 + [70.0] * 10
    v = aggregate(scores, tracks, 10, 0.5, "track-max", sides=sides)
    assert v.p_fake == pytest.approx(0.8) and v.label == "FAKE"
    assert [t.face_side for t in v.tracks] == [220.0, 70.0]
    assert "a small face (about 70 px against the largest track's 220)" in v.reason
    # the large face deciding, or two faces of like size: nothing to say
    assert "small face" not in aggregate(scores[::-1], tracks, 10, 0.5, "track-max", sides=sides).reason
    assert "small face" not in aggregate(scores, tracks, 10, 0.5, "track-max", sides=[220.0] * 10 + [120.0] * 10).reason
    assert aggregate(scores, tracks, 10, 0.5).tracks[0].face_side is None


def test_short_clip_where_every_track_is_short_still_has_a_verdict():
    # 40 frames asked for but only 2 crops, of one face: that face is all there is
    v = aggregate(np.array([0.7, 0.8]), [3, 3], 40, 0.5)
    assert v.p_fake == pytest.approx(0.75) and v.tracks[0].counted
    # two equally short tracks: both count, the worse one decides
    v = aggregate(np.array([0.3, 0.6]), [0, 1], 40, 0.5)
    assert v.p_fake == pytest.approx(0.6) and all(t.counted for t in v.tracks)


def test_threshold_sets_the_label():
    scores, tracks = np.array([0.6, 0.6]), [0, 0]
    assert aggregate(scores, tracks, 2, 0.5).label == "FAKE"
    assert aggregate(scores, tracks, 2, 0.6).label == "FAKE"
    assert aggregate(scores, tracks, 2, 0.61).label == "REAL"
    assert aggregate(scores, tracks, 2, 0.0).label == "FAKE"
    assert aggregate(scores, tracks, 2, 1.0).label == "REAL"


def test_unknown_method():
    with pytest.raises(ValueError, match="track-max"):
        aggregate(np.array([0.5]), [0], 1, 0.5, "median")


def test_calibration_identity_monotone_and_bounded():
    raw = np.linspace(0.0, 1.0, 101)
    identity = np.array([Calibration()(p) for p in raw])
    np.testing.assert_allclose(identity[1:-1], raw[1:-1], atol=1e-6)
    tempered = np.array([Calibration(0.5, 0.0)(p) for p in raw])
    assert np.all(np.diff(tempered) > 0) and tempered.min() > 0 and tempered.max() < 1
    assert Calibration(0.5, 0.0)(0.99) < 0.99 and Calibration(0.5, 0.0)(0.01) > 0.01  # less confident
    assert Calibration(1.0, 1.0)(0.5) == pytest.approx(1 / (1 + np.exp(-1)))


def test_aggregate_applies_the_calibration_last_and_says_so():
    calibration = Calibration(0.5, -0.2)
    v = aggregate(np.array([0.9, 0.95, 0.92]), [0, 0, 0], 3, 0.5, calibration=calibration)
    assert v.p_raw == pytest.approx(np.mean([0.9, 0.95, 0.92]))
    assert v.p_fake == pytest.approx(calibration(v.p_raw))
    assert f"{v.p_raw:.3f} calibrated to {v.p_fake:.3f}" in v.reason
    assert v.label == ("FAKE" if v.p_fake >= 0.5 else "REAL")
    plain = aggregate(np.array([0.9, 0.95, 0.92]), [0, 0, 0], 3, 0.5)
    assert plain.p_fake == plain.p_raw and "calibrated" not in plain.reason


def test_large_max_keeps_a_small_background_face_from_deciding():
    # a real main face (220 px) and a background face (80 px) the model finds suspicious
    scores, tracks = np.array([0.2] * 10 + [0.95] * 10), [0] * 10 + [1] * 10
    sides = [220.0] * 10 + [80.0] * 10
    v = aggregate(scores, tracks, 10, 0.5, sides=sides)  # the default
    assert v.p_fake == pytest.approx(0.2) and v.label == "REAL" and v.aggregate == "large-max"
    assert v.reason.startswith("mean of 10 crops of track 0, the one large face; 1 track(s) of faces under 0.5 "
                               "of the largest's 220 px not deciding (up to 0.950)")
    # track-max lets the small face decide
    assert aggregate(scores, tracks, 10, 0.5, "track-max", sides=sides).p_fake == pytest.approx(0.95)
    # a swapped face of like size among real ones still decides, undiluted
    like = aggregate(scores, tracks, 10, 0.5, "large-max", sides=[220.0] * 10 + [150.0] * 10)
    assert like.p_fake == pytest.approx(0.95) and "not deciding" not in like.reason
    # without face sizes it is track-max
    assert aggregate(scores, tracks, 10, 0.5, "large-max").p_fake == pytest.approx(0.95)


def test_face_weighted_weighs_tracks_by_duration_and_face_area():
    # track 0: 20 crops of a 200-px face at 0.2; track 1: 10 crops of a 100-px face at 0.8
    scores, tracks = np.array([0.2] * 20 + [0.8] * 10), [0] * 20 + [1] * 10
    v = aggregate(scores, tracks, 20, 0.5, "face-weighted", sides=[200.0] * 20 + [100.0] * 10)
    w1 = 10 * 100**2 / (10 * 100**2 + 20 * 200**2)  # 1/9
    assert v.p_fake == pytest.approx(0.2 * (1 - w1) + 0.8 * w1)
    assert "2 face tracks weighted by crops × face size²: track 0 0.200 × 89% (200 px), track 1 0.800 × 11% (100 px)" \
        in v.reason
    # sizes unknown: by crops alone; one track: its mean; passers-by carry no weight
    assert aggregate(scores, tracks, 20, 0.5, "face-weighted").p_fake == pytest.approx((20 * 0.2 + 10 * 0.8) / 30)
    assert aggregate(scores[:20], tracks[:20], 20, 0.5, "face-weighted").p_fake == pytest.approx(0.2)
    passer = aggregate(np.append(scores[:20], 0.99), tracks[:20] + [2], 20, 0.5, "face-weighted")
    assert passer.p_fake == pytest.approx(0.2)
