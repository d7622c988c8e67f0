"""Stage 4 — verdict: turn crop scores into one probability per video, and say how.

Default ("large-max"): average each face track's crops, then take the most suspicious of the
tracks whose face is at least SMALL_FACE_SHARE of the largest: a single swapped face among
several real ones is not diluted, and a small background face (unlike the main faces models are
trained on) cannot decide. It was chosen over the others on the validation pool by a rule fixed
in advance (detector.evaluation.selection). "track-max": the most suspicious track, whatever its
size. "mean": all crops averaged. "face-weighted": the tracks' means weighted by crops × face
side², how much face each shows over the clip.
A model whose model.json carries a calibration has that score mapped to a probability last.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AGGREGATES = ("large-max", "track-max", "mean", "face-weighted")
DEFAULT_AGGREGATE = AGGREGATES[0]
MIN_TRACK_SHARE = 0.1  # a track seen in fewer than this share of sampled frames is a passer-by
# A track whose faces are under this share of the largest counted track's side is small: models are
# trained on each clip's main face only (data/crops.py), so a much smaller face is unlike what
# they learned from (docs/model-card.md: a background face decided a real FaceForensics++ clip
# under track-max). large-max leaves small tracks out; track-max names a small decider.
SMALL_FACE_SHARE = 0.5


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of a video score: p = sigmoid(scale · logit(raw) + bias), fitted on validation
    clips so that p_fake means what it says (of clips scored 0.8, about 80% are fake).
    scale 1, bias 0 is the identity; a scale below 1 tempers an over-confident model."""
    scale: float = 1.0
    bias: float = 0.0

    def __call__(self, raw: float) -> float:
        raw = min(max(float(raw), 1e-7), 1 - 1e-7)
        return float(1.0 / (1.0 + np.exp(-(self.scale * np.log(raw / (1 - raw)) + self.bias))))


@dataclass(frozen=True)
class TrackScore:
    track: int
    n_crops: int
    p_fake: float  # mean of the track's crop scores
    counted: bool  # False for passer-by tracks too short to trust
    face_side: float | None = None  # median of the longer side of its face boxes, full-resolution px


@dataclass(frozen=True)
class Verdict:
    p_fake: float
    label: str  # "FAKE" or "REAL"
    p_raw: float  # the score before calibration (equal to p_fake for an uncalibrated model)
    aggregate: str
    threshold: float
    tracks: list[TrackScore]
    reason: str  # one sentence a person can read back


def aggregate(scores: np.ndarray, tracks: list[int], n_frames: int, threshold: float,
              method: str = DEFAULT_AGGREGATE, calibration: Calibration | None = None,
              sides: Sequence[float] | None = None) -> Verdict:
    """The video's p_fake from crop scores and each crop's track id (at least one crop), and each
    crop's face size where known (`sides`: the longer side of its box)."""
    if method not in AGGREGATES:
        raise ValueError(f"unknown aggregate {method!r}; choose from {', '.join(AGGREGATES)}")
    scores = np.asarray(scores, np.float64)
    ids = np.asarray(tracks)
    min_crops = max(1, int(np.ceil(MIN_TRACK_SHARE * n_frames)))
    longest = max(int(np.sum(ids == t)) for t in set(tracks))
    sizes = None if sides is None else np.asarray(sides, np.float64)
    per_track = [
        TrackScore(int(t), int(np.sum(ids == t)), float(scores[ids == t].mean()),
                   counted=int(np.sum(ids == t)) >= min(min_crops, longest),
                   face_side=None if sizes is None else float(np.median(sizes[ids == t])))
        for t in sorted(set(tracks))
    ]
    counted = [t for t in per_track if t.counted]
    largest = max((t.face_side for t in counted if t.face_side is not None), default=None)
    if method == "mean":
        p_fake = float(scores.mean())
        reason = f"mean of all {len(scores)} face crops"
    elif len(counted) == 1:
        p_fake = counted[0].p_fake
        reason = f"mean of {counted[0].n_crops} crops of the one face track"
    elif method == "face-weighted":
        p_fake, reason = _face_weighted(counted)
    else:
        small = [t for t in counted if _is_small(t, largest)] if method == "large-max" else []
        top = max((t for t in counted if t not in small), key=lambda t: t.p_fake)
        p_fake = top.p_fake
        reason = (f"most suspicious of {len(counted) - len(small)} face tracks: track {top.track} "
                  f"({top.n_crops} crops, mean {top.p_fake:.3f})" if len(counted) - len(small) > 1 else
                  f"mean of {top.n_crops} crops of track {top.track}, the one large face")
        if _is_small(top, largest):
            reason += (f", a small face (about {top.face_side:.0f} px against the largest track's "
                       f"{largest:.0f}): check its crops before leaning on this verdict")
        if small:
            reason += (f"; {len(small)} track(s) of faces under {SMALL_FACE_SHARE:g} of the largest's "
                       f"{largest:.0f} px not deciding (up to {max(t.p_fake for t in small):.3f})")
    skipped = len(per_track) - len(counted)
    if skipped and method != "mean":
        reason += f"; {skipped} track(s) seen in fewer than {min_crops} frames ignored"
    p_raw = p_fake
    if calibration is not None:
        p_fake = calibration(p_raw)
        reason += f"; {p_raw:.3f} calibrated to {p_fake:.3f}"
    label = "FAKE" if p_fake >= threshold else "REAL"
    reason += f"; {p_fake:.3f} {'≥' if label == 'FAKE' else '<'} threshold {threshold:.3f} → {label}"
    return Verdict(p_fake, label, p_raw, method, threshold, per_track, reason)


def _is_small(track: TrackScore, largest: float | None) -> bool:
    return track.face_side is not None and track.face_side < SMALL_FACE_SHARE * largest


def _face_weighted(counted: list[TrackScore]) -> tuple[float, str]:
    """The tracks' means weighted by crops × face side² (crops alone where sizes are unknown): a
    face seen briefly or small, a passer-by in the background, weighs little; and why."""
    weights = np.array([t.n_crops * (t.face_side ** 2 if t.face_side is not None else 1.0) for t in counted])
    weights /= weights.sum()
    p_fake = float(np.dot(weights, [t.p_fake for t in counted]))
    parts = ", ".join(f"track {t.track} {t.p_fake:.3f} × {w:.0%}" + (f" ({t.face_side:.0f} px)" if t.face_side else "")
                      for t, w in sorted(zip(counted, weights), key=lambda tw: -tw[1]))
    return p_fake, f"{len(counted)} face tracks weighted by crops × face size²: {parts}"
