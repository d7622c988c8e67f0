"""Evaluate a model on a labelled set with the real scanner, and write the report.

    deepfake-detector evaluate --model models/default --data ../shared/data/manifest.csv --out work/eval

Every clip goes through the same stages and defaults as `app.py` (its results land in
OUT/scan/, so an interrupted evaluation resumes), then video-level metrics are computed overall,
per manipulation method and per dataset: ROC AUC with a 95% bootstrap interval, log loss,
accuracy and balanced accuracy at the model's threshold, equal error rate and average precision;
and, where a fake's own original is among the clips (by FaceForensics++-style names), how often
the fake outscores it.

`--calibrate` (on validation clips) fits a Platt scaling of the video score and picks the
threshold on the calibrated scores, and writes both into the model's model.json: from then on
the scanner's p_fake is a calibrated probability. Never calibrate on the clips you report as
held out.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.scan.aggregation import AGGREGATES, Calibration
from detector.api import scan_batch
from detector.evaluation.metrics import compute_metrics, grouped_metrics, paired_ranking, pick_threshold
from detector.evaluation.report import format_table, write_report
from detector.scan.faces import FaceDetector
from detector.files import atomic_write
from detector.scan.model import Model
from detector.scan.scanner import Scanner, Settings
from detector.scan.status import Status
from detector.output.results import ResultsFolder
from detector.runtime import command_line, resolve_device
from detector.data.datasets import (
    SIDES,
    LabelledVideo,
    read_dataset,
    read_split_sides,
    source_scene,
)


def scan_labelled(model: Model, videos: list[LabelledVideo], out: Path, settings: Settings, device: str = "cpu",
                  progress: bool = True) -> list[dict]:
    """Scan the videos into OUT/scan (resumable); one row per video with its label, score and raw score."""
    results = ResultsFolder(out / "scan")
    scanner = Scanner(model, FaceDetector("cuda" if device == "gpu" else "cpu"), settings)
    batch = scan_batch(scanner, [v.path for v in videos], results)
    for _ in tqdm(batch, total=len(videos), unit="clip", desc="scanning", disable=not progress, file=sys.stderr):
        pass
    rows = []
    for video in videos:
        row = results.rows[str(video.path)]
        raw = None
        if row.status == Status.OK:
            raw = json.loads((results.folder / row.details).read_text())["verdict"].get("p_raw", row.p_fake)
        rows.append({"path": str(video.path), "label": video.label, "score": row.p_fake, "raw": raw,
                     "group": video.method, "dataset": video.dataset,
                     "scene": source_scene(video.path.stem, video.label), "status": row.status,
                     "predicted": row.label, "error": row.error})
    return rows


def report(rows: list[dict], out: Path, threshold: float, extra: dict | None = None) -> tuple[dict, dict]:
    """Metrics overall, per method and per dataset; writes the report files; returns the metrics
    and what metrics.json holds beside them (`extra` with the uncalibrated scores' figures and the
    own-original pairs where there are any)."""
    scored = [r for r in rows if r["status"] == Status.OK]
    if not scored:
        raise ValueError("no clip could be scored (no faces found or unreadable): nothing to evaluate")
    labels, scores = [r["label"] for r in scored], [r["score"] for r in scored]
    metrics = grouped_metrics(labels, scores, [r["group"] for r in scored], threshold)
    if len({r["dataset"] for r in scored}) > 1:
        by_dataset = grouped_metrics(labels, scores, [f"dataset:{r['dataset']}" for r in scored], threshold)
        metrics.update({k: v for k, v in by_dataset.items() if k != "all"})
    if 0 < sum(labels) < len(labels):
        raw = compute_metrics(labels, [r["raw"] for r in scored], threshold)
        extra = {**(extra or {}), "uncalibrated": {"log_loss": raw.log_loss, "auc": raw.auc}}
    if paired := paired_ranking(scored):
        extra = {**(extra or {}), "paired": paired}
    # Rows that could not be scored are listed but carry no score; the plots skip them.
    write_report(out, scored + [r for r in rows if r["status"] != Status.OK], metrics, extra)
    return metrics, extra or {}


def select_videos(data: Path | None, split: Path | None, subset: str) -> list[LabelledVideo]:
    """The labelled clips of --data, or one side of a training split (found under --data when given:
    the split names the clips, --data says where they are now)."""
    if split is None:
        return read_dataset(data)
    videos = read_split_sides(split)[subset]
    if data is not None:
        names = {v.path.name for v in videos}
        videos = [v for v in read_dataset(data) if v.path.name in names]
    return videos


def evaluate(model: Model, videos: list[LabelledVideo], out: Path, settings: Settings, device: str = "cpu",
             progress: bool = True) -> dict:
    """Scan the videos, then score the verdicts against their labels; returns the metrics by group."""
    rows = scan_labelled(model, videos, out, settings, device, progress)
    return report(rows, out, settings.threshold_for(model))[0]


def fit_calibration(labels: list[int], raw: list[float]) -> Calibration:
    """Platt scaling: the logistic regression of the label on logit(raw score), minimising log loss."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(np.asarray(raw, float), 1e-7, 1 - 1e-7)
    fit = LogisticRegression(C=1e4).fit(np.log(p / (1 - p))[:, None], np.asarray(labels))
    return Calibration(float(fit.coef_[0, 0]), float(fit.intercept_[0]))


def fit_temperature(labels: list[int], raw: list[float]) -> Calibration:
    """A temperature: p = sigmoid(logit(raw) / T), the one-parameter calibration (Platt with no
    bias), which cannot move the score of an undecided clip; stored as scale 1/T."""
    from scipy.optimize import minimize_scalar

    p = np.clip(np.asarray(raw, float), 1e-7, 1 - 1e-7)
    logit, y = np.log(p / (1 - p)), np.asarray(labels, float)

    def loss(log_scale: float) -> float:
        z = np.exp(log_scale) * logit
        return float(np.mean(np.logaddexp(0, z) - y * z))

    return Calibration(float(np.exp(minimize_scalar(loss, bounds=(-5, 5), method="bounded").x)), 0.0)


def calibrate(model_dir: Path, rows: list[dict], command: str) -> tuple[Calibration, float, dict]:
    """Fit the calibration and the threshold on these (validation) rows and write them into
    model.json, with what they were fitted on; rows' scores become the calibrated ones."""
    scored = [r for r in rows if r["status"] == Status.OK]
    labels, raw = [r["label"] for r in scored], [r["raw"] for r in scored]
    if not 0 < sum(labels) < len(labels):
        raise ValueError("calibration needs both real and fake clips that could be scored")
    calibration = fit_calibration(labels, raw)
    for row in scored:
        row["score"] = calibration(row["raw"])
    threshold = pick_threshold(labels, [r["score"] for r in scored])
    for row in scored:
        row["predicted"] = "FAKE" if row["score"] >= threshold else "REAL"
    fit = {"method": "Platt scaling of the video score (logistic regression on its logit)",
           "videos": len(scored), "fakes": sum(labels), "command": command,
           "log_loss_before": compute_metrics(labels, raw, 0.5).log_loss,
           "log_loss_after": compute_metrics(labels, [r["score"] for r in scored], 0.5).log_loss}
    card_path = Path(model_dir) / "model.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card.update(calibration=asdict(calibration), threshold=round(threshold, 4), calibration_fit=fit)
    atomic_write(card_path, json.dumps(card, indent=1) + "\n")
    return calibration, threshold, fit


def record_in_card(model_dir: Path, metrics: dict, command: str) -> None:
    """Keep the evaluation with the model it describes, so the numbers travel with the weights."""
    card_path = Path(model_dir) / "model.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card["evaluation"] = {"command": command, "metrics": {name: asdict(m) for name, m in metrics.items()}}
    atomic_write(card_path, json.dumps(card, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="SavedModel folder")
    parser.add_argument("--data", type=Path, help="labelled videos: a folder in a supported layout or a CSV manifest")
    parser.add_argument("--split", type=Path, help="a split CSV from training (matched to --data by file name); "
                        "with --subset, evaluate one side of it")
    parser.add_argument("--subset", choices=SIDES, default="val", help="side of --split to evaluate (default val)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--frames", type=int, default=Settings.frames)
    parser.add_argument("--aggregate", choices=AGGREGATES, default=Settings.aggregate)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the calibration and threshold on these clips and write them into the model's "
                             "model.json (validation clips only)")
    parser.add_argument("--record", action="store_true",
                        help="also write the metrics into the model's model.json (its data card) under 'evaluation'")
    args = parser.parse_args(argv)
    if args.split is None and args.data is None:
        parser.error("give --data, or --split with --subset")
    videos = select_videos(args.data, args.split, args.subset)
    device = resolve_device(args.device)
    model = Model(args.model, device)
    settings = Settings(frames=args.frames, aggregate=args.aggregate, threshold=args.threshold)
    command = command_line("evaluate", argv)
    rows = scan_labelled(model, videos, args.out, settings, device)
    threshold, extra = settings.threshold_for(model), None
    if args.calibrate:
        calibration, threshold, fit = calibrate(args.model, rows, command)
        extra = {"calibration": asdict(calibration), "calibration_fit": fit}
        print(f"calibration: scale {calibration.scale:.3f}, bias {calibration.bias:.3f}; log loss "
              f"{fit['log_loss_before']:.3f} → {fit['log_loss_after']:.3f}; threshold {threshold:.3f} "
              f"(written to {args.model / 'model.json'})", file=sys.stderr)
    metrics, extra = report(rows, args.out, threshold, extra)
    print(format_table(metrics))
    if paired := extra.get("paired"):
        print(f"fakes above the real clip of their own scene: {paired['fake_above']:g} of {paired['pairs']} pairs "
              f"({paired['scenes']} scenes; AUC over these pairs {paired['auc']:.3f})")
    if args.record:
        record_in_card(args.model, metrics, command)
    print(f"report: {args.out}/metrics.json, predictions.csv, roc.png, scores.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
