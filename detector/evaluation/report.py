"""The evaluation report of a labelled set of per-video scores: metrics.json, scores.csv, the ROC and
score plots, and the text tables printed beside them (the numbers are metrics.py's)."""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from detector.evaluation.metrics import ALL, Metrics, as_arrays, group_masks
from detector.files import atomic_open


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
    y, s = as_arrays([int(r["label"]) for r in scored], [float(r["score"]) for r in scored])
    has_groups = all("group" in r for r in scored)
    masks = group_masks(y, [str(r["group"]) for r in scored]) if has_groups else {ALL: np.ones(y.shape, bool)}
    _plot_roc(out_dir / "roc.png", y, s, masks, metrics)
    _plot_scores(out_dir / "scores.png", y, s, metrics[ALL].threshold)


def format_table(metrics: dict[str, Metrics]) -> str:
    """A fixed-width plain-text table, readable in a terminal and pasteable into a README."""
    header = ["group", "n", "AUC (95% CI)", "log loss", "acc", "bal acc", "EER", "AP", "real called FAKE (95% CI)"]
    body = [
        [name, str(m.n), format_auc(m), format_number(m.log_loss), format_number(m.accuracy),
         format_number(m.balanced_accuracy), format_number(m.eer), format_number(m.average_precision), format_alarms(m)]
        for name, m in metrics.items()
    ]
    return text_table(header, body)


def format_number(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_auc(m: Metrics) -> str:
    return format_number(m.auc) if m.auc_low is None else f"{m.auc:.3f} ({m.auc_low:.2f}–{m.auc_high:.2f})"


def format_alarms(m: Metrics) -> str:
    """Real videos called FAKE as a count, so a small set reads as small: "3/16 (0.07–0.43)"."""
    if m.real_called_fake is None:
        return "-"
    return f"{round(m.real_called_fake * m.n_real)}/{m.n_real} ({m.real_called_fake_low:.2f}–{m.real_called_fake_high:.2f})"


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])
