"""Metrics of a labelled set of per-video scores: AUC with its interval, log loss, accuracy at a
threshold, the share of real videos called FAKE (the false alarms a user sees) with its interval,
per-group tables, own-original pairs, and the threshold pick. The evaluation folder's bottom: the
trainer, the evaluator and the study all use it.

Labels follow the convention 1 = fake, 0 = real; a score is the predicted probability that the
video is fake, and a video is predicted fake when ``score >= threshold``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score, roc_curve

_PROB_CLIP = 1e-6
ALL = "all"


@dataclass(frozen=True)
class Metrics:
    """Summary of one (sub)set; score-ranking metrics are None when only one class is present."""

    n: int
    n_real: int
    n_fake: int
    auc: float | None
    log_loss: float | None
    accuracy: float
    balanced_accuracy: float
    eer: float | None
    average_precision: float | None
    threshold: float
    auc_low: float | None = None  # 95% bootstrap interval of the AUC (videos resampled within each class)
    auc_high: float | None = None
    real_called_fake: float | None = None  # share of the real videos scored >= threshold; None without reals
    real_called_fake_low: float | None = None  # its 95% Wilson interval
    real_called_fake_high: float | None = None


def as_arrays(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs once, so every metric below can assume clean binary data."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D and equally long, got {y.shape} and {s.shape}")
    if y.size == 0:
        raise ValueError("cannot evaluate an empty set")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y.astype(int), s


def _equal_error_rate(y: np.ndarray, s: np.ndarray) -> float:
    """EER where the ROC curve crosses FPR == FNR, linearly interpolated between ROC points."""
    fpr, tpr, _ = roc_curve(y, s)
    gap = fpr - (1.0 - tpr)  # starts at -1 at (0, 0) and ends at +1 at (1, 1)
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(fpr[i])
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present, so a one-class set still gets a meaningful value."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def auc_interval(y: np.ndarray, s: np.ndarray, level: float = 0.95, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC: reals and fakes are resampled separately, so
    every resample has both classes. With a few dozen videos the interval is wide; say so."""
    rng = np.random.default_rng(seed)
    real, fake = s[y == 0], s[y == 1]
    both = np.concatenate([real[rng.integers(real.size, size=(n, real.size))],
                           fake[rng.integers(fake.size, size=(n, fake.size))]], axis=1)
    ranks = rankdata(both, axis=1)[:, real.size:]  # Mann–Whitney: AUC from the fakes' rank sum
    wins = (ranks.sum(axis=1) - fake.size * (fake.size + 1) / 2) / (fake.size * real.size)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(wins, [tail, 100 - tail])
    return float(low), float(high)


def real_called_fake(y: np.ndarray, s: np.ndarray, threshold: float) -> float | None:
    """Share of the real videos scored at or above the threshold; None without reals."""
    real = y == 0
    return float((s[real] >= threshold).mean()) if real.any() else None


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: unlike the normal approximation it stays inside
    [0, 1] and is not zero-width at 0 of n, which small sets (9 real clips) need."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def compute_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> Metrics:
    """Metrics for one set; ranking metrics (AUC, log loss, EER, AP) need both classes, else None."""
    y, s = as_arrays(labels, scores)
    pred = (s >= threshold).astype(int)
    n_fake = int(y.sum())
    both_classes = 0 < n_fake < y.size
    low, high = auc_interval(y, s) if both_classes else (None, None)
    n_real, alarms = int(y.size - n_fake), real_called_fake(y, s, threshold)
    alarm_low, alarm_high = wilson_interval(round(alarms * n_real), n_real) if n_real else (None, None)
    return Metrics(
        n=int(y.size),
        n_real=n_real,
        n_fake=n_fake,
        auc=float(roc_auc_score(y, s)) if both_classes else None,
        log_loss=(
            float(log_loss(y, np.clip(s, _PROB_CLIP, 1 - _PROB_CLIP), labels=[0, 1]))
            if both_classes
            else None
        ),
        accuracy=float(np.mean(pred == y)),
        balanced_accuracy=_balanced_accuracy(y, pred),
        eer=_equal_error_rate(y, s) if both_classes else None,
        average_precision=float(average_precision_score(y, s)) if both_classes else None,
        threshold=float(threshold),
        auc_low=low,
        auc_high=high,
        real_called_fake=alarms,
        real_called_fake_low=alarm_low,
        real_called_fake_high=alarm_high,
    )


def group_masks(labels: np.ndarray, groups: Sequence[str]) -> dict[str, np.ndarray]:
    """Which videos each report group evaluates (see grouped_metrics for the rules)."""
    g = np.asarray(groups, dtype=object)
    if g.shape != labels.shape:
        raise ValueError(f"groups must match labels in length, got {g.shape} and {labels.shape}")
    masks = {ALL: np.ones(labels.shape, dtype=bool)}
    for name in dict.fromkeys(g):  # first-appearance order, for a stable report
        if name == ALL:
            raise ValueError(f"group name {ALL!r} is reserved for the whole set")
        members = g == name
        if (labels[members] == 1).all():
            members = members | (labels == 0)
        masks[str(name)] = members
    return masks


def grouped_metrics(
    labels: Sequence[int], scores: Sequence[float], groups: Sequence[str], threshold: float
) -> dict[str, Metrics]:
    """Metrics for the whole set (key "all") and for each group, in order of first appearance.

    Groups are meant to be manipulation methods, e.g. "Deepfakes", "Face2Face", "real".
    A method's AUC only means something against real videos, so a group made up
    solely of fakes is evaluated together with ALL real videos of the set.
    Any other group (e.g. "real", or a mixed group such as a source dataset) is
    evaluated on its own members only; "real" therefore has AUC None.
    """
    y, s = as_arrays(labels, scores)
    return {name: compute_metrics(y[m], s[m], threshold) for name, m in group_masks(y, groups).items()}


def paired_ranking(rows: Sequence[dict]) -> dict | None:
    """How often a fake outscores the real clip of its own scene (rows with the same "scene"; ties
    count half): the AUC over those pairs alone. None where no scene has both.

    A plain AUC also ranks one scene's fakes against another scene's originals, so a scene whose
    real clip scores high pulls it down however well its own fakes are told from it; the two
    figures side by side say which of the two limits a model.
    """
    reals: dict[str, list[float]] = {}
    for r in rows:
        if r.get("scene") and r["score"] is not None and not r["label"]:
            reals.setdefault(r["scene"], []).append(float(r["score"]))
    pairs, above, scenes = 0, 0.0, set()
    for r in rows:
        if r.get("scene") in reals and r["score"] is not None and r["label"]:
            scenes.add(r["scene"])
            for real in reals[r["scene"]]:
                pairs += 1
                above += 1.0 if r["score"] > real else 0.5 if r["score"] == real else 0.0
    if not pairs:
        return None
    return {"pairs": pairs, "fake_above": above, "auc": above / pairs, "scenes": len(scenes)}


def pick_threshold(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The threshold that maximises balanced accuracy on validation data.

    Candidates are midpoints between consecutive distinct scores (a margin on both
    sides generalises better than sitting on a score), the two trivial extremes,
    and 0.5. Ties go to the candidate closest to 0.5, the natural cut for a
    probability, so a well-calibrated model keeps 0.5 when nothing beats it.
    """
    y, s = as_arrays(labels, scores)
    if not 0 < y.sum() < y.size:
        raise ValueError("picking a threshold needs both real and fake videos")
    distinct = np.unique(s)
    candidates = np.concatenate(
        [(distinct[:-1] + distinct[1:]) / 2, [distinct[0], np.nextafter(distinct[-1], np.inf), 0.5]]
    )
    # Fraction of each class on each side of every candidate, via sorted lookups (O(n log n)).
    real, fake = np.sort(s[y == 0]), np.sort(s[y == 1])
    tnr = np.searchsorted(real, candidates, side="left") / real.size
    tpr = 1.0 - np.searchsorted(fake, candidates, side="left") / fake.size
    balanced = (tnr + tpr) / 2
    best = candidates[balanced >= balanced.max() - 1e-12]
    return float(best[np.argmin(np.abs(best - 0.5))])
