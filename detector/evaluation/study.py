"""Compare trained models on the validation pool from their face crops (AUC, log loss, reals called
FAKE), with intervals, and apply the pre-registered rules of a retrain (docs/training-at-scale.md): soup or seed, new or bundled.

    deepfake-detector study --pool work/pool.csv --crops work/crops_clips --crops work/crops_dfdc_val \\
        --model bundled=models/default --model "seed 0=work/seed_0/model" --seed-run "seed 0" … \\
        --model soup=work/soup --soup soup --bundled bundled --reference "seed 0" --out work/study

A clip's score is the mean p(fake) of 16 evenly spaced crops of its main face track, as the trainer
validates; a still (a DFDC crop) is scored alone. Crops are already cut, so a model costs seconds,
not a scan of every clip: this is for ranking runs, and `select` then scans the pool for the one
that ships. Intervals are the cluster bootstrap of `select` (identity groups within each group;
2,000 resamples), and a comparison is paired: both models on the same resamples.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.data.crops import CropRecord, read_index
from detector.evaluation.metrics import real_called_fake
from detector.evaluation.pool import CROPS, VAL, PoolItem, read_pool
from detector.evaluation.selection import Estimate, auc, estimate, losses, plain, resamples
from detector.files import atomic_write
from detector.scan.model import Model

CROPS_PER_CLIP = 16  # as the trainer's validation (TrainConfig.val_crops_per_video)
CLIPS = "clips (all)"  # the pooled group of every clip-level item


@dataclass(frozen=True)
class Scored:
    """The validation items that have crops, and each model's score for each of them."""
    items: list[PoolItem]
    scores: dict[str, np.ndarray]  # model name -> one score per item
    thresholds: dict[str, float]  # model name -> the threshold its model.json calls FAKE at
    missing: int  # pool items without a crop (no face found), left out


def item_crops(items: list[PoolItem], folders: list[Path]) -> tuple[list[PoolItem], list[list[CropRecord]]]:
    """Each item's crops (evenly spaced, at most CROPS_PER_CLIP); items without any are dropped."""
    by_video: dict[Path, list[CropRecord]] = {}
    for folder in folders:
        for record in read_index(folder):
            by_video.setdefault(Path(record.video).resolve(), []).append(record)
    kept, crops = [], []
    for item in items:
        found = by_video.get(Path(item.video.path).resolve(), [])
        if found:
            step = max(1, len(found) // CROPS_PER_CLIP)
            kept.append(item)
            crops.append(found[::step][:CROPS_PER_CLIP])
    return kept, crops


def score(models: dict[str, Path], items: list[PoolItem], folders: list[Path]) -> Scored:
    """Every model's score for every validation item; each crop is read once for all models."""
    kept, crops = item_crops([i for i in items if i.side == VAL], folders)
    records = list({r.crop: r for group in crops for r in group}.values())
    images = np.stack([r.image() for r in records])
    index = {r.crop: k for k, r in enumerate(records)}
    scores, thresholds = {}, {}
    for name, folder in models.items():
        model = Model(folder, runtime="tensorflow")
        p = model.predict(images, batch_size=32)
        scores[name] = np.array([p[[index[r.crop] for r in group]].mean() for group in crops])
        thresholds[name] = model.contract.threshold
    return Scored(kept, scores, thresholds, sum(i.side == VAL for i in items) - len(kept))


def groups(items: list[PoolItem]) -> dict[str, np.ndarray]:
    """Report group -> mask over the items; CLIPS pools every clip-level group."""
    names = np.array([i.group for i in items])
    out = {g: names == g for g in dict.fromkeys(names)}
    out[CLIPS] = np.array([i.level != CROPS for i in items])
    return out


def measure(scored: Scored, draws: list[np.ndarray]) -> dict:
    """Per model and group: AUC, log loss, and the share of real items called FAKE at the model's
    threshold (the false alarms a user sees), with intervals."""
    labels = np.array([i.video.label for i in scored.items])
    table = {}
    for name, s in scored.scores.items():
        table[name] = {}
        for group, mask in groups(scored.items).items():
            def on(d, metric, mask=mask, s=s):
                d = d[mask[d]]
                return metric(labels[d], s[d])
            table[name][group] = {
                "auc": estimate(lambda d: on(d, auc), draws, len(labels)),
                "log_loss": estimate(lambda d: on(d, lambda y, p: float(losses(y, p).mean())), draws, len(labels)),
                "real_called_fake": estimate(lambda d: on(d, lambda y, p, t=scored.thresholds[name]: _called(y, p, t)),
                                             draws, len(labels))}
    return table


def _called(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    share = real_called_fake(labels, scores, threshold)
    return float("nan") if share is None else share


def difference(scored: Scored, draws: list[np.ndarray], a: str, b: str, group: str) -> Estimate:
    """AUC of model a minus model b on one group, paired over the same resamples."""
    labels = np.array([i.video.label for i in scored.items])
    mask = groups(scored.items)[group]

    def diff(d):
        d = d[mask[d]]
        return auc(labels[d], scored.scores[a][d]) - auc(labels[d], scored.scores[b][d])
    return estimate(diff, draws, len(labels))


def decide(table: dict, seeds: list[str], soup: str | None, bundled: str | None) -> dict:
    """Rules 1 and 2 of docs/training-at-scale.md, on pooled validation clip AUC."""
    value = {name: table[name][CLIPS]["auc"].value for name in table}
    spread = max(value[s] for s in seeds) - min(value[s] for s in seeds)
    if soup is not None and value[soup] >= min(value[s] for s in seeds):
        candidate, why = soup, f"the soup ({value[soup]:.3f}) is not below the lowest seed ({min(value[s] for s in seeds):.3f})"
    else:
        candidate = seeds[0]
        why = (f"the soup ({value[soup]:.3f}) is below the lowest seed; the first seed ships" if soup is not None
               else "no soup; the first seed ships")
    ship = candidate
    if bundled is not None:
        if value[candidate] < value[bundled] - spread:
            ship = bundled
            why += (f"; it is below the bundled model ({value[bundled]:.3f}) by more than the seed spread "
                    f"({spread:.3f}): the bundled model stays")
        else:
            why += (f"; it is not below the bundled model ({value[bundled]:.3f}) by more than the seed spread "
                    f"({spread:.3f}): it replaces it")
    return {"ship": ship, "candidate": candidate, "seed_spread": spread, "why": why}


def ablations(scored: Scored, draws: list[np.ndarray], names: list[str], reference: str, spread: float) -> dict:
    """Each ablation against the reference run per group: the difference, and whether it counts
    (interval clear of 0 and larger than the seed spread; rule 3)."""
    out = {}
    for name in names:
        out[name] = {}
        for group in groups(scored.items):
            d = difference(scored, draws, name, reference, group)
            counts = not np.isnan(d.value) and (d.low > 0 or d.high < 0) and abs(d.value) > spread
            out[name][group] = {"difference": d, "counts": bool(counts)}
    return out


def markdown(result: dict) -> str:
    table, groups_ = result["table"], result["groups"]
    lines = ["# Validation study (crop-based scores; the validation pool only)", "",
             "| model | " + " | ".join(f"{g} AUC | {g} log loss | {g} real called FAKE" for g in groups_) + " |",
             "|---|" + "---|---|---|" * len(groups_)]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{row[g]['auc']} | {row[g]['log_loss']} | {row[g]['real_called_fake']}" for g in groups_) + " |")
    lines += ["", "Items per group (real + fake): " + ", ".join(f"{g} {n[0]}+{n[1]}" for g, n in result["sizes"].items())
              + f"; left out without a crop: {result['missing']}."]
    if result.get("ablations"):
        lines += ["", f"## Ablations against {result['reference']} (AUC difference, paired 95% interval)", "",
                  "| ablation | " + " | ".join(groups_) + " |", "|---|" + "---|" * len(groups_)]
        for name, row in result["ablations"].items():
            lines.append(f"| {name} | " + " | ".join(
                row[g]["difference"].difference() + (" **counts**" if row[g]["counts"] else "") for g in groups_) + " |")
    if result.get("decision"):
        d = result["decision"]
        lines += ["", "## Decision", "", f"Seed spread (pooled clip AUC): {d['seed_spread']:.3f}. Ships: **{d['ship']}**. {d['why']}."]
    return "\n".join(lines) + "\n"


def study(models: dict[str, Path], pool: Path, crops: list[Path], seeds: list[str], ablation_names: list[str],
          reference: str | None, soup: str | None, bundled: str | None) -> dict:
    scored = score(models, read_pool(pool), crops)
    draws = resamples(scored.items)
    table = measure(scored, draws)
    labels = np.array([i.video.label for i in scored.items])
    sizes = {g: (int((labels[m] == 0).sum()), int((labels[m] == 1).sum())) for g, m in groups(scored.items).items()}
    result = {"table": table, "groups": list(groups(scored.items)), "sizes": sizes, "missing": scored.missing,
              "reference": reference, "items": [str(i.video.path) for i in scored.items],
              "scores": {name: [round(float(v), 6) for v in s] for name, s in scored.scores.items()}}
    if seeds:
        result["decision"] = decide(table, seeds, soup, bundled)
        if ablation_names:
            result["ablations"] = ablations(scored, draws, ablation_names, reference or seeds[0],
                                            result["decision"]["seed_spread"])
            result["reference"] = reference or seeds[0]
    return result


def _named(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, Path(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=_named, action="append", required=True, metavar="NAME=FOLDER",
                        help="a SavedModel to score, under a name (repeatable)")
    parser.add_argument("--pool", type=Path, required=True, help="the pool CSV (deepfake-detector pool); its val side is used")
    parser.add_argument("--crops", type=Path, action="append", required=True,
                        help="crop folders (deepfake-detector crops) holding the pool's clips and stills (repeatable)")
    parser.add_argument("--seed-run", action="append", default=[], metavar="NAME",
                        help="a model that is one seed of the recipe (repeatable; gives the seed spread)")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME", help="a model that is an ablation (repeatable)")
    parser.add_argument("--reference", default=None, help="the run ablations are compared with (default: the first seed)")
    parser.add_argument("--soup", default=None, help="the model that is the seeds' soup")
    parser.add_argument("--bundled", default=None, help="the model the candidate may replace")
    parser.add_argument("--out", type=Path, required=True, help="folder for study.json and study.md")
    args = parser.parse_args(argv)
    models = dict(args.model)
    named = args.seed_run + args.ablation + [n for n in (args.reference, args.soup, args.bundled) if n]
    unknown = sorted(set(named) - set(models))
    if unknown:
        parser.error(f"not given as --model NAME=FOLDER: {', '.join(unknown)}")
    if args.ablation and not args.seed_run:
        parser.error("ablations need --seed-run: a difference is weighed against the seed spread")
    result = study(models, args.pool, args.crops, args.seed_run, args.ablation, args.reference, args.soup, args.bundled)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "study.json", json.dumps(plain(result), indent=1) + "\n")
    text = markdown(result)
    atomic_write(args.out / "study.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
