"""Evaluate a model on a labelled set with the real scanner, and write the report.

    python -m detector.evaluate --model models/default --data ../shared/data/manifest.csv --out work/eval

Every clip goes through the same stages and defaults as `app.py` (its results land in
OUT/scan/, so an interrupted evaluation resumes), then video-level metrics are computed overall,
per manipulation method and per dataset: ROC AUC, log loss, accuracy and balanced accuracy at the
model's threshold, equal error rate and average precision.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from detector.aggregation import AGGREGATES
from detector.runtime import resolve_device
from detector.training.datasets import LabelledVideo, read_dataset, read_split
from detector.faces import FaceDetector
from detector.model import Model
from detector.pipeline import Scanner, Settings, run_batch
from detector.evaluation.report import format_table, grouped_metrics, write_report
from detector.files import atomic_write
from detector.results import ResultsFolder


def evaluate(model: Model, videos: list[LabelledVideo], out: Path, settings: Settings, device: str = "cpu",
             progress: bool = True) -> dict:
    """Scan the videos, then score the verdicts against their labels; returns the metrics by group."""
    results = ResultsFolder(out / "scan")
    scanner = Scanner(model, FaceDetector("cuda" if device == "gpu" else "cpu"), settings)
    run_batch(scanner, [v.path for v in videos], results, progress=progress)
    threshold = settings.threshold_for(model)
    rows, scored = [], []
    for video in videos:
        row = results.rows[str(video.path)]
        rows.append({"path": str(video.path), "label": video.label, "score": row.p_fake, "group": video.method,
                     "dataset": video.dataset, "status": row.status, "predicted": row.label, "error": row.error})
        if row.status == "ok":
            scored.append(rows[-1])
    if not scored:
        raise ValueError("no clip could be scored (no faces found or unreadable): nothing to evaluate")
    labels, scores = [r["label"] for r in scored], [r["score"] for r in scored]
    metrics = grouped_metrics(labels, scores, [r["group"] for r in scored], threshold)
    datasets = {r["dataset"] for r in scored}
    if len(datasets) > 1:
        by_dataset = grouped_metrics(labels, scores, [f"dataset:{r['dataset']}" for r in scored], threshold)
        metrics.update({k: v for k, v in by_dataset.items() if k != "all"})
    # Rows that could not be scored are listed but carry no score; the plots skip them.
    write_report(out, scored + [r for r in rows if r["status"] != "ok"], metrics)
    return metrics


def record_in_card(model_dir: Path, metrics: dict, command: str) -> None:
    """Keep the evaluation with the model it describes, so the numbers travel with the weights."""
    card_path = Path(model_dir) / "model.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card["evaluation"] = {"command": command, "metrics": {name: asdict(m) for name, m in metrics.items()}}
    atomic_write(card_path, json.dumps(card, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detector.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="SavedModel folder")
    parser.add_argument("--data", type=Path, help="labelled videos: a folder in a supported layout or a CSV manifest")
    parser.add_argument("--split", type=Path, help="a split CSV from training (matched to --data by file name); "
                        "with --subset, evaluate one side of it")
    parser.add_argument("--subset", choices=("train", "val"), default="val", help="side of --split to evaluate (default val)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--frames", type=int, default=Settings.frames)
    parser.add_argument("--aggregate", choices=AGGREGATES, default=Settings.aggregate)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--record", action="store_true",
                        help="also write the metrics into the model's model.json (its data card) under 'evaluation'")
    args = parser.parse_args(argv)
    if args.split is None and args.data is None:
        parser.error("give --data, or --split with --subset")
    if args.split is not None:
        train, val = read_split(args.split)
        videos = val if args.subset == "val" else train
        if args.data is not None:  # the split names the clips; --data says where they are now
            names = {v.path.name for v in videos}
            videos = [v for v in read_dataset(args.data) if v.path.name in names]
    else:
        videos = read_dataset(args.data)
    device = resolve_device(args.device)
    model = Model(args.model, device)
    settings = Settings(frames=args.frames, aggregate=args.aggregate, threshold=args.threshold)
    metrics = evaluate(model, videos, args.out, settings, device)
    print(format_table(metrics))
    if args.record:
        argv_used = argv if argv is not None else sys.argv[1:]
        record_in_card(args.model, metrics, "python -m detector.evaluate " + " ".join(shlex.quote(a) for a in argv_used))
    print(f"report: {args.out}/metrics.json, predictions.csv, roc.png, scores.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
