"""The validation pool for choices made after training (aggregate, calibration, threshold), and
the held-out clips beside it, fixed by a seeded identity split before any score is seen.

    deepfake-detector pool --data ../shared/data --split models/default/split.csv --out pool.csv

- The model's own `val` clips (its split.csv) join the pool; its `test` clips stay held out.
- Clips of the manifest its split does not name (new identities, never trained on) are split by
  identity, half to the pool and half held out, stratified by dataset and label (`split_sides`).
- DFDC crops (`faces/dfdc_crops`, identity = source video) give a crop-level group: a share of
  their identities joins the pool; the rest stays free for training. They are never a test.
Its `train` clips are in neither: a model's choices are never made on what it learned from.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from detector.files import atomic_write
from detector.data.datasets import (LabelledVideo, read_face_photos, read_manifest, read_split_sides, split_sides,
                                    write_split)

NEW_VAL_FRACTION = 0.5  # of the new identities: into the pool; the rest is held out
DFDC_VAL_FRACTION = 0.3  # of the DFDC source videos: into the pool; the rest is left for training
SEED = 0
VAL, HELD_OUT = "val", "heldout"
CROPS = "crops"  # the level of a group scored crop by crop (DFDC stills), not clip by clip


@dataclass(frozen=True)
class PoolItem:
    """One clip (or crop) of the pool or of the held-out set, and the report group it counts in."""
    video: LabelledVideo
    group: str  # e.g. "FF++ new", "other (model val)", "DFDC crops"
    side: str  # VAL (choices may be made on it) or HELD_OUT (reported only, after the choices)
    level: str = "clips"  # "clips" (scanned as videos) or CROPS


def _source(dataset: str) -> str:
    return "FF++" if dataset == "FF++" else "other"  # "unknown" origin counts with the other sources


def build_pool(manifest: Path, model_split: Path | None, dfdc_crops: Path | None = None,
               seed: int = SEED) -> list[PoolItem]:
    """The pool and held-out items for a model trained with `model_split` (clips matched by file name).
    Without a split only the DFDC group: what a training run must leave out before its split exists
    (the DFDC side depends on nothing else, so it is the same either way)."""
    items = []
    if model_split is not None:
        items = _clip_items(manifest, model_split, seed)
    if dfdc_crops is not None:
        items += [PoolItem(v, "DFDC crops", VAL, CROPS)
                  for v in split_sides(read_face_photos(dfdc_crops), DFDC_VAL_FRACTION, 0.0, seed)["val"]]
    return items


def _clip_items(manifest: Path, model_split: Path, seed: int) -> list[PoolItem]:
    sides = read_split_sides(model_split)
    named = {v.path.name: side for side, videos in sides.items() for v in videos}
    clips = read_manifest(manifest)
    items = [PoolItem(v, f"{_source(v.dataset)} (model {named[v.path.name]})",
                      VAL if named[v.path.name] == "val" else HELD_OUT)
             for v in clips if named.get(v.path.name) in ("val", "test")]
    new = [v for v in clips if v.path.name not in named]
    if new:
        halves = split_sides(new, NEW_VAL_FRACTION, 1 - NEW_VAL_FRACTION, seed)
        items += [PoolItem(v, f"{_source(v.dataset)} new", side)
                  for side, key in ((VAL, "val"), (HELD_OUT, "test")) for v in halves[key]]
    return items


def extended_split(model_split: Path, items: list[PoolItem]) -> dict[str, list[LabelledVideo]]:
    """The model's split with the pool's new clips added, their pool side as `val` and held-out as
    `test`: a new run trained on this split learns from none of them, so the same pool and held-out
    clips can judge it beside the model it may replace."""
    sides = read_split_sides(model_split)
    named = {v.path.name for videos in sides.values() for v in videos}
    for item in items:
        if item.level == "clips" and item.video.path.name not in named:
            sides["val" if item.side == VAL else "test"].append(item.video)
    return sides


COLUMNS = ("path", "label", "dataset", "method", "identities", "group", "side", "level")


def write_pool(path: Path, items: list[PoolItem]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows((i.video.path, i.video.label, i.video.dataset, i.video.method, ";".join(i.video.identities),
                      i.group, i.side, i.level) for i in items)
    atomic_write(path, buffer.getvalue())


def read_pool(path: Path) -> list[PoolItem]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [PoolItem(LabelledVideo(Path(r["path"]), int(r["label"]), r["dataset"], r["method"],
                                       tuple(i for i in r["identities"].split(";") if i)),
                         r["group"], r["side"], r["level"])
                for r in csv.DictReader(handle)]


def counts(items: list[PoolItem]) -> dict[tuple[str, str], tuple[int, int]]:
    """(side, group) → (reals, fakes)."""
    table: dict[tuple[str, str], tuple[int, int]] = {}
    for item in items:
        real, fake = table.get((item.side, item.group), (0, 0))
        table[item.side, item.group] = (real + (item.video.label == 0), fake + (item.video.label == 1))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector pool", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (manifest.csv, faces/)")
    parser.add_argument("--split", type=Path, default=None,
                        help="the model's split.csv; without it only the DFDC group is written: the crops a "
                             "training run must leave out (deepfake-detector crops --exclude)")
    parser.add_argument("--out", type=Path, required=True, help="the pool CSV to write")
    parser.add_argument("--write-split", type=Path, default=None, metavar="CSV",
                        help="also write the model's split with the new clips added (pool side as val, held-out "
                             "as test): a split for training a successor judged on the same clips (needs --split)")
    args = parser.parse_args(argv)
    if args.write_split and not args.split:
        parser.error("--write-split needs --split")
    dfdc = args.data / "faces" / "dfdc_crops"
    items = build_pool(args.data / "manifest.csv", args.split, dfdc if dfdc.is_dir() else None)
    write_pool(args.out, items)
    if args.write_split:
        sides = extended_split(args.split, items)
        write_split(args.write_split, sides["train"], sides["val"], sides["test"])
    for (side, group), (real, fake) in sorted(counts(items).items()):
        print(f"{side:8} {group:22} {real:4} real {fake:4} fake")
    return 0


if __name__ == "__main__":
    sys.exit(main())
