"""Evaluation report for a labelled set of per-video scores.

Labels follow the convention 1 = fake, 0 = real; a score is the predicted
probability that the video is fake, and a video is predicted fake when
``score >= threshold``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score, roc_curve

from detector.files import atomic_open

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


def _as_arrays(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
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


def compute_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> Metrics:
    """Metrics for one set; ranking metrics (AUC, log loss, EER, AP) need both classes, else None."""
    y, s = _as_arrays(labels, scores)
    pred = (s >= threshold).astype(int)
    n_fake = int(y.sum())
    both_classes = 0 < n_fake < y.size
    low, high = auc_interval(y, s) if both_classes else (None, None)
    return Metrics(
        n=int(y.size),
        n_real=int(y.size - n_fake),
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
    )


def _group_masks(labels: np.ndarray, groups: Sequence[str]) -> dict[str, np.ndarray]:
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
    y, s = _as_arrays(labels, scores)
    return {name: compute_metrics(y[m], s[m], threshold) for name, m in _group_masks(y, groups).items()}


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
    y, s = _as_arrays(labels, scores)
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


def _plot_roc(
    path: Path, y: np.ndarray, s: np.ndarray, masks: dict[str, np.ndarray], metrics: dict[str, Metrics]
) -> None:
    """ROC curve of every reported group that has both classes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # An explicit Agg canvas: headless-safe and leaves the caller's pyplot backend alone.
    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, m in metrics.items():
        if m.auc is None or name not in masks:
            continue
        fpr, tpr, _ = roc_curve(y[masks[name]], s[masks[name]])
        ax.plot(fpr, tpr, label=f"{name} (AUC {m.auc:.3f})", linewidth=2 if name == ALL else 1)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlabel="False positive rate (real called fake)", ylabel="True positive rate (fake caught)",
           title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")


def _plot_scores(path: Path, y: np.ndarray, s: np.ndarray, threshold: float) -> None:
    """Score histograms of reals vs fakes, to show separation and where the threshold cuts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = np.linspace(min(0.0, s.min()), max(1.0, s.max()), 41)
    ax.hist(s[y == 0], bins=bins, alpha=0.6, label=f"real (n={int((y == 0).sum())})")
    ax.hist(s[y == 1], bins=bins, alpha=0.6, label=f"fake (n={int((y == 1).sum())})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="score (p_fake)", ylabel="videos", title="Score distribution")
    ax.legend(fontsize="small")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")


def write_report(out_dir: Path, rows: Sequence[dict], metrics: dict[str, Metrics], extra: dict | None = None) -> None:
    """Write predictions.csv, metrics.json, roc.png and scores.png into `out_dir`.

    Each row must carry "label" (0/1) and "score"; an optional "group" lets the ROC
    plot draw the groups in `metrics` (selected as in grouped_metrics). `metrics`
    must contain "all", whose threshold is drawn on the score histogram.
    """
    if not rows:
        raise ValueError("no prediction rows to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    with atomic_open(out_dir / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)

    payload = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {name: asdict(m) for name, m in metrics.items()},
        **(extra or {}),
    }
    with atomic_open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, allow_nan=False)  # fail loudly rather than emit NaN
        f.write("\n")

    scored = [r for r in rows if r["score"] is not None]  # unscorable inputs are listed, not plotted
    y, s = _as_arrays([int(r["label"]) for r in scored], [float(r["score"]) for r in scored])
    has_groups = all("group" in r for r in scored)
    masks = _group_masks(y, [str(r["group"]) for r in scored]) if has_groups else {ALL: np.ones(y.shape, bool)}
    _plot_roc(out_dir / "roc.png", y, s, masks, metrics)
    _plot_scores(out_dir / "scores.png", y, s, metrics[ALL].threshold)


def format_table(metrics: dict[str, Metrics]) -> str:
    """A fixed-width plain-text table, readable in a terminal and pasteable into a README."""
    header = ["group", "n", "AUC (95% CI)", "log loss", "acc", "bal acc", "EER", "AP"]
    body = [
        [name, str(m.n), format_auc(m), format_number(m.log_loss), format_number(m.accuracy),
         format_number(m.balanced_accuracy), format_number(m.eer), format_number(m.average_precision)]
        for name, m in metrics.items()
    ]
    return text_table(header, body)


def format_number(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_auc(m: Metrics) -> str:
    return format_number(m.auc) if m.auc_low is None else f"{m.auc:.3f} ({m.auc_low:.2f}–{m.auc_high:.2f})"


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])
