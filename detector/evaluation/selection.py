"""Choose a model's verdict rule and calibration on its validation pool, by the rule fixed in
advance (docs/model-selection.md), and report every group with intervals.

    deepfake-detector select --model models/default --pool models/default/evaluation/pool.csv \\
        --out work/selection [--install]

Each clip of the pool is scanned once with the scanner's defaults (resumable, OUT/scan); every
candidate rule is then computed from the cached crop scores, tracks and face sizes, so the
candidates see exactly the same crops. DFDC stills are re-cropped the scanner's way (OUT/crops)
and scored once. `--install` writes the chosen calibration (or none) and threshold into the
model's model.json with the selection's record; the chosen rule is the scanner's default in code.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detector.scan.aggregation import AGGREGATES, Calibration, aggregate
from detector.evaluation.evaluate import fit_calibration, fit_temperature, scan_labelled
from detector.evaluation.pool import CROPS, HELD_OUT, VAL, PoolItem, read_pool
from detector.files import atomic_write
from detector.scan.model import Model
from detector.scan.scanner import Settings
from detector.output.results import ResultsFolder
from detector.data.crops import build, read_index
from detector.data.datasets import identity_groups
from detector.runtime import command_line

INCUMBENT = "track-max"  # the default the pre-registered rule was run against
SIMPLICITY = ("mean", "large-max", "face-weighted")  # a tie among challengers goes to the earlier
THRESHOLD = 0.5  # fixed, not fitted: on a calibrated probability (or the raw score) 0.5 spends nothing
SCAN_SETTINGS = Settings(threshold=THRESHOLD)  # a fixed key, so a new model.json threshold does not rescan
RESAMPLES, LEVEL, SEED = 2000, 0.95, 0
_CLIP = 1e-6


@dataclass(frozen=True)
class ClipCrops:
    """What the scanner found in one clip, enough to recompute any verdict rule from the cache."""
    item: PoolItem
    scores: np.ndarray
    tracks: list[int]
    sides: np.ndarray
    n_frames: int

    def raw(self, method: str) -> float:
        return aggregate(self.scores, self.tracks, self.n_frames, THRESHOLD, method, sides=self.sides).p_raw


def scan_clips(model: Model, items: list[PoolItem], out: Path, device: str = "cpu") -> list[ClipCrops]:
    """Scan the pool's clips into OUT/scan (once; resumable) and read back their crops; clips
    without a face are dropped (the report counts them)."""
    videos = [i.video for i in items]
    scan_labelled(model, videos, out, SCAN_SETTINGS, device)
    results = ResultsFolder(out / "scan")
    found = []
    for item in items:
        row = results.rows[str(item.video.path)]
        if row.status != "ok":
            continue
        frames = json.loads((results.folder / row.details).read_text())["frames"]
        faces = [face for frame in frames for face in frame["faces"]]
        found.append(ClipCrops(item, np.array([f["p_fake"] for f in faces], np.float64), [f["track"] for f in faces],
                               np.array([max(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) for f in faces]),
                               len(frames)))
    return found


def score_stills(model: Model, items: list[PoolItem], out: Path) -> dict[str, float]:
    """p_fake of each still's main face, re-cropped the scanner's way (OUT/crops, resumable) and
    cached in OUT/crop_scores.csv; stills without a face are left out."""
    cache = out / "crop_scores.csv"
    scores: dict[str, float] = {}
    if cache.exists():
        with cache.open(newline="") as handle:
            scores = {row["path"]: float(row["p_fake"]) for row in csv.DictReader(handle)}
    todo = [i.video for i in items if str(i.video.path) not in scores]
    if todo:
        build(todo, out / "crops", frames=1, crop_size=model.input_size, progress=False)
        by_still: dict[str, np.ndarray] = {}
        for record in read_index(out / "crops"):
            by_still.setdefault(record.video, record.image())  # one crop per still: its main face
        wanted = [str(v.path) for v in todo if str(v.path) in by_still]
        if wanted:
            p = model.predict(np.stack([by_still[path] for path in wanted]))
            scores.update(zip(wanted, map(float, p)))
        atomic_write(cache, "path,p_fake\n" + "".join(f"{path},{p:.6f}\n" for path, p in sorted(scores.items())))
    return {str(i.video.path): scores[str(i.video.path)] for i in items if str(i.video.path) in scores}


# --- statistics ------------------------------------------------------------------------------


def losses(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each item's log loss, so that resamples only re-average them."""
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (ties count half); NaN where a class is missing, as in a small group's resample."""
    from scipy.stats import rankdata

    n_fake = int(labels.sum())
    if not 0 < n_fake < labels.size:
        return float("nan")
    ranks = rankdata(scores)[labels == 1]
    return float((ranks.sum() - n_fake * (n_fake + 1) / 2) / (n_fake * (labels.size - n_fake)))


def resamples(items: Sequence[PoolItem], n: int = RESAMPLES, seed: int = SEED) -> list[np.ndarray]:
    """Index arrays of a cluster bootstrap: identity groups (a fake with its own original, which
    are not independent) drawn with replacement within each report group."""
    rng = np.random.default_rng(seed)
    index = {item.video.path: k for k, item in enumerate(items)}
    clusters: list[list[np.ndarray]] = []
    for group in dict.fromkeys(i.group for i in items):
        videos = [i.video for i in items if i.group == group]
        clusters.append([np.array([index[v.path] for v in c]) for c in identity_groups(videos)])
    return [np.concatenate([c[j] for c in clusters for j in rng.integers(len(c), size=len(c))]) for _ in range(n)]


def interval(values: Sequence[float]) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(np.asarray(values, float), [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% bootstrap interval."""
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return "–" if np.isnan(self.value) else f"{self.value:.3f} ({self.low:.2f}–{self.high:.2f})"

    def difference(self) -> str:
        """A difference, signed and fine enough to show which side of 0 its interval ends."""
        return f"{self.value:+.4f} ({self.low:+.5f} to {self.high:+.5f})"


def estimate(metric: Callable[[np.ndarray], float], draws: list[np.ndarray], n: int) -> Estimate:
    """metric(indices) on all n items, with its interval over the resamples."""
    return Estimate(metric(np.arange(n)), *interval([metric(d) for d in draws]))


# --- the candidates ----------------------------------------------------------------------------


def logo_calibrated(labels: np.ndarray, raw: np.ndarray, groups: np.ndarray,
                    fit: Callable[[list[int], list[float]], Calibration]) -> np.ndarray:
    """Each item's score calibrated by a fit made without its group (leave one group out)."""
    out = np.empty_like(raw)
    for group in np.unique(groups):
        inside = groups == group
        calibration = fit(list(labels[~inside]), list(raw[~inside]))
        out[inside] = [calibration(r) for r in raw[inside]]
    return out


@dataclass(frozen=True)
class Comparison:
    """A challenger against a reference on the same resamples: the difference and its interval."""
    name: str
    reference: str
    difference: Estimate

    @property
    def below(self) -> bool:
        return self.difference.high < 0

    @property
    def above(self) -> bool:
        return self.difference.low > 0


def compare(name: str, reference: str, a: np.ndarray, b: np.ndarray, draws: list[np.ndarray],
            metric: Callable[[np.ndarray, np.ndarray], float]) -> Comparison:
    """metric on a's items minus on b's, paired: both on every resample."""
    return Comparison(name, reference, estimate(lambda d: metric(a, d) - metric(b, d), draws, len(a)))


def choose_aggregate(by_loss: dict[str, Comparison], by_auc: dict[str, Comparison],
                     between: Callable[[str, str], Comparison], loss: dict[str, float]) -> tuple[str, str]:
    """The pre-registered rule: a challenger must beat the incumbent on LOGO log loss (interval of
    the difference wholly below 0), else on AUC (wholly above 0, log loss not wholly worse); among
    winners the lowest log loss, unless a simpler one ties with it. Returns (rule, why)."""
    winners = [c for c in SIMPLICITY if by_loss[c].below]
    if not winners:
        winners = [c for c in SIMPLICITY if by_auc[c].above and not by_loss[c].above]
        if not winners:
            return INCUMBENT, f"no challenger beats {INCUMBENT} beyond the noise: it stays"
    best = min(winners, key=loss.__getitem__)
    tied = [c for c in winners if c == best or not (between(c, best).below or between(c, best).above)]
    chosen = min(tied, key=SIMPLICITY.index)
    return chosen, (f"{', '.join(winners)} beat {INCUMBENT}; lowest LOGO log loss: {best}"
                    + (f"; {chosen} ties with it and is simpler" if chosen != best else ""))


@dataclass(frozen=True)
class GroupCheck:
    """One group's log loss before and after a calibration it was not fitted on."""
    group: str
    fitted_on: tuple[str, ...]
    calibration: Calibration
    before: float
    after: float

    @property
    def passed(self) -> bool:
        return self.after <= self.before


def calibration_checks(labels: np.ndarray, raw: np.ndarray, groups: np.ndarray,
                       fit: Callable[[list[int], list[float]], Calibration],
                       crops: tuple[np.ndarray, np.ndarray] | None) -> list[GroupCheck]:
    """Leave one group out: each group's log loss under a fit without it; then the fit on every
    group applied to the crop-level group (labels, scores), which it never saw."""
    checks = []
    for group in dict.fromkeys(groups):
        inside = groups == group
        calibration = fit(list(labels[~inside]), list(raw[~inside]))
        after = np.array([calibration(r) for r in raw[inside]])
        checks.append(GroupCheck(str(group), tuple(dict.fromkeys(groups[~inside])), calibration,
                                 float(losses(labels[inside], raw[inside]).mean()),
                                 float(losses(labels[inside], after).mean())))
    if crops is not None:
        calibration = fit(list(labels), list(raw))
        y, s = crops
        checks.append(GroupCheck("DFDC crops", tuple(dict.fromkeys(groups)), calibration,
                                 float(losses(y, s).mean()), float(losses(y, np.array([calibration(r) for r in s])).mean())))
    return checks


# --- the run ----------------------------------------------------------------------------------


FITS: dict[str, Callable[[list[int], list[float]], Calibration]] = {
    "temperature": fit_temperature, "platt": fit_calibration}


def _arrays(clips: Sequence[ClipCrops]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([c.item.video.label for c in clips]), np.array([c.item.group for c in clips], dtype=object)


def _pooled_loss(y: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda p, d: float(losses(y[d], p[d]).mean())


def _pooled_auc(y: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda p, d: auc(y[d], p[d])


def group_rows(clips: Sequence[ClipCrops], scores: dict[str, np.ndarray],
               thresholds: dict[str, float] | None = None) -> list[dict]:
    """Per report group and pooled: reals, fakes, and for each named score its AUC and log loss
    with intervals (and its accuracy at its threshold, where given)."""
    y, g = _arrays(clips)
    rows = []
    for name in [*dict.fromkeys(g), "pooled"]:
        inside = np.ones(len(y), bool) if name == "pooled" else g == name
        members = [c.item for c, keep in zip(clips, inside) if keep]
        draws = resamples(members)
        yi = y[inside]
        row = {"group": name, "real": int((yi == 0).sum()), "fake": int(yi.sum())}
        for label, s in scores.items():
            si = s[inside]
            row[label] = {"auc": estimate(lambda d: auc(yi[d], si[d]), draws, len(yi)),
                          "log_loss": estimate(lambda d: float(losses(yi[d], si[d]).mean()), draws, len(yi))}
            if thresholds:
                row[label]["accuracy"] = float(np.mean((si >= thresholds[label]) == (yi == 1)))
        rows.append(row)
    return rows


def crop_row(items: Sequence[PoolItem], stills: dict[str, float], calibration: Calibration | None) -> dict | None:
    """The crop-level group: AUC and log loss of the crop scores, raw and under the calibration
    (None without one)."""
    kept = [i for i in items if str(i.video.path) in stills]
    if not kept:
        return None
    y = np.array([i.video.label for i in kept])
    raw = np.array([stills[str(i.video.path)] for i in kept])
    draws = resamples(kept)
    row = {"group": "DFDC crops", "real": int((y == 0).sum()), "fake": int(y.sum()), "no_face": len(items) - len(kept)}
    for label, s in (("raw", raw), ("calibrated", None if calibration is None else np.array([calibration(r) for r in raw]))):
        if s is not None:
            row[label] = {"auc": estimate(lambda d: auc(y[d], s[d]), draws, len(y)),
                          "log_loss": estimate(lambda d: float(losses(y[d], s[d]).mean()), draws, len(y))}
    return row


def select(model: Model, items: list[PoolItem], out: Path, device: str = "cpu") -> dict:
    """Scan the pool, then apply the pre-registered rules; everything the report and model.json need."""
    clips = scan_clips(model, [i for i in items if i.level != CROPS], out, device)
    stills = score_stills(model, [i for i in items if i.level == CROPS and i.side == VAL], out)
    return decide(items, clips, stills, model.contract.calibration, model.contract.threshold)


def decide(items: list[PoolItem], clips: list[ClipCrops], stills: dict[str, float],
           old_cal: Calibration | None, old_threshold: float) -> dict:
    """The pre-registered rules on scanned clips and scored stills; the held-out side is scored
    for the old defaults (track-max, `old_cal`, `old_threshold`) and the chosen ones."""
    still_items = [i for i in items if i.level == CROPS and i.side == VAL]
    val = [c for c in clips if c.item.side == VAL]
    y, g = _arrays(val)
    draws = resamples([c.item for c in val])
    raw = {m: np.array([c.raw(m) for c in val]) for m in AGGREGATES}
    logo = {m: logo_calibrated(y, raw[m], g, fit_temperature) for m in AGGREGATES}
    loss, area = _pooled_loss(y), _pooled_auc(y)
    by_loss = {m: compare(m, INCUMBENT, logo[m], logo[INCUMBENT], draws, loss) for m in SIMPLICITY}
    by_auc = {m: compare(m, INCUMBENT, raw[m], raw[INCUMBENT], draws, area) for m in SIMPLICITY}
    pooled = {m: float(losses(y, logo[m]).mean()) for m in AGGREGATES}
    rule, why = choose_aggregate(by_loss, by_auc, lambda a, b: compare(a, b, logo[a], logo[b], draws, loss), pooled)

    logo_fits = {name: logo_calibrated(y, raw[rule], g, fit) for name, fit in FITS.items()}
    platt_vs_t = compare("platt", "temperature", logo_fits["platt"], logo_fits["temperature"], draws, loss)
    method = "platt" if platt_vs_t.below else "temperature"
    crops = None
    if stills:
        kept = [i for i in still_items if str(i.video.path) in stills]
        crops = (np.array([i.video.label for i in kept]), np.array([stills[str(i.video.path)] for i in kept]))
    checks = calibration_checks(y, raw[rule], g, FITS[method], crops)
    calibration = FITS[method](list(y), list(raw[rule])) if all(c.passed for c in checks) else None

    held = [c for c in clips if c.item.side == HELD_OUT]
    old = np.array([old_cal(c.raw(INCUMBENT)) if old_cal else c.raw(INCUMBENT) for c in held])
    new = np.array([calibration(c.raw(rule)) if calibration else c.raw(rule) for c in held])
    new_val = np.array([calibration(r) if calibration else r for r in raw[rule]])
    plain = np.array([c.raw(INCUMBENT) for c in held])
    return {
        "pool": {"val_clips": len(val), "held_out_clips": len(held),
                 "unscored_clips": sum(i.level != CROPS for i in items) - len(clips)},
        "aggregates": {m: group_rows(val, {"raw": raw[m], "logo_temperature": logo[m]}) for m in AGGREGATES},
        "against_incumbent": {"logo_log_loss": {m: asdict(c) for m, c in by_loss.items()},
                              "auc": {m: asdict(c) for m, c in by_auc.items()}},
        "aggregate": {"chosen": rule, "why": why, "logo_log_loss": pooled},
        "calibration": {"method": method, "platt_minus_temperature_logo_log_loss": asdict(platt_vs_t),
                        "logo_log_loss": {name: float(losses(y, p).mean()) for name, p in logo_fits.items()},
                        "checks": [asdict(c) | {"passed": c.passed} for c in checks],
                        "shipped": None if calibration is None else asdict(calibration),
                        "fitted_on": sorted(set(g)), "clips": len(val), "fakes": int(y.sum())},
        "validation": group_rows(val, {"shipped": new_val}, {"shipped": THRESHOLD}),
        "crops": crop_row(still_items, stills, calibration),
        "held_out": {"old": {"aggregate": INCUMBENT, "calibration": None if old_cal is None else asdict(old_cal),
                             "threshold": old_threshold},
                     "new": {"aggregate": rule, "calibration": None if calibration is None else asdict(calibration),
                             "threshold": THRESHOLD},
                     "rows": group_rows(held, {"old": old, "track-max raw": plain, "new": new},
                                        {"old": old_threshold, "track-max raw": THRESHOLD, "new": THRESHOLD})},
        "disagreements": disagreements(clips),
    }


def disagreements(clips: Sequence[ClipCrops], margin: float = 0.01) -> list[dict]:
    """The clips whose verdict rules differ by more than `margin`, with their counted tracks: the
    only clips a choice between the rules turns on."""
    rows = []
    for clip in clips:
        scores = {m: clip.raw(m) for m in AGGREGATES}
        if max(scores.values()) - min(scores.values()) > margin:
            tracks = aggregate(clip.scores, clip.tracks, clip.n_frames, THRESHOLD, sides=clip.sides).tracks
            rows.append({"side": clip.item.side, "group": clip.item.group, "clip": clip.item.video.path.stem,
                         "label": clip.item.video.label, "scores": scores,
                         "tracks": [f"{t.n_crops}×{t.face_side:.0f}px {t.p_fake:.3f}" for t in tracks if t.counted]})
    return rows


# --- report and model card ----------------------------------------------------------------------


def _table(rows: list[dict], labels: Sequence[str], accuracy: bool = False) -> str:
    """A markdown table: group, reals+fakes, then AUC and log loss (95% intervals) per named score."""
    head = ["group", "real+fake"] + [f"{label} {what}" for label in labels
                                     for what in ("AUC", "log loss") + (("accuracy",) if accuracy else ())]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["group"], f"{row['real']}+{row['fake']}"]
        for label in labels:
            cells += [str(row[label]["auc"]), str(row[label]["log_loss"])]
            if accuracy:
                cells.append(f"{row[label]['accuracy']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The selection as model-card sections: per-group tables, the choices and why, the checks."""
    parts = ["### Verdict rules on the validation pool (raw score; LOGO = temperature fitted without the group)"]
    for rule, rows in result["aggregates"].items():
        parts += [f"\n`{rule}`\n", _table(rows, ["raw", "logo_temperature"])]
    parts.append("\nAgainst `track-max` (challenger minus track-max, paired, 95% interval):\n")
    for name, c in result["against_incumbent"]["logo_log_loss"].items():
        a = result["against_incumbent"]["auc"][name]
        parts.append(f"- `{name}`: LOGO log loss {Estimate(**c['difference']).difference()}, "
                     f"AUC {Estimate(**a['difference']).difference()}")
    agg, cal = result["aggregate"], result["calibration"]
    parts.append(f"\n**Chosen rule: `{agg['chosen']}`** — {agg['why']}.\n")
    parts.append("### Calibration\n\nLOGO log loss of the chosen rule: "
                 + ", ".join(f"{k} {v:.3f}" for k, v in cal["logo_log_loss"].items())
                 + f"; Platt minus temperature {Estimate(**cal['platt_minus_temperature_logo_log_loss']['difference']).difference()}"
                 + f" → candidate: {cal['method']}.\n")
    parts += ["| left out (tested on) | fitted on | scale (1/T) | bias | log loss before | after | passed |",
              "|---|---|---|---|---|---|---|"]
    for c in cal["checks"]:
        parts.append(f"| {c['group']} | {', '.join(c['fitted_on'])} | {c['calibration']['scale']:.3f} | "
                     f"{c['calibration']['bias']:.3f} | {c['before']:.3f} | {c['after']:.3f} | {'yes' if c['passed'] else 'NO'} |")
    shipped = cal["shipped"]
    parts.append("\n" + (f"**Shipped: {cal['method']}, scale {shipped['scale']:.3f}, bias {shipped['bias']:.3f}**, fitted on "
                         f"{cal['clips']} validation clips ({cal['fakes']} fake)." if shipped else
                         "**Shipped uncalibrated**: the calibration failed a check above."))
    parts += ["\n### Validation pool, as shipped (threshold 0.5)\n", _table(result["validation"], ["shipped"], True)]
    if crop := result["crops"]:
        parts.append(f"\nDFDC crops (crop level, {crop['real']}+{crop['fake']}, {crop['no_face']} without a face): raw AUC "
                     f"{crop['raw']['auc']}, log loss {crop['raw']['log_loss']}"
                     + (f"; calibrated log loss {crop['calibrated']['log_loss']}" if "calibrated" in crop else ""))
    held = result["held_out"]
    parts += [f"\n### Held out (reported once, after the choices): old defaults ({held['old']['aggregate']}, "
              f"calibration {held['old']['calibration']}, threshold {held['old']['threshold']:.3f}) and new "
              f"({held['new']['aggregate']}, calibration {held['new']['calibration']}, threshold {held['new']['threshold']})\n",
              _table(held["rows"], ["old", "track-max raw", "new"], True),
              "\n### Clips the rules disagree on (raw scores; counted tracks: crops × face side, mean)\n",
              "| side | group | clip | label | " + " | ".join(AGGREGATES) + " | tracks |",
              "|" + "---|" * (len(AGGREGATES) + 5)]
    parts += [f"| {d['side']} | {d['group']} | {d['clip'].split('__', 3)[-1]} | {'fake' if d['label'] else 'real'} | "
              + " | ".join(f"{d['scores'][m]:.3f}" for m in AGGREGATES) + f" | {'; '.join(d['tracks'])} |"
              for d in result["disagreements"]]
    return "\n".join(parts) + "\n"


def install(model_dir: Path, result: dict, command: str) -> None:
    """Write the shipped calibration (or remove it), the threshold and the selection's record into
    model.json, so the model carries what was chosen for it and on what."""
    path = Path(model_dir) / "model.json"
    card = json.loads(path.read_text())
    cal = result["calibration"]
    card.pop("calibration", None)
    if cal["shipped"] is not None:
        card["calibration"] = cal["shipped"]
    card["threshold"] = THRESHOLD
    card["calibration_fit"] = {
        "method": (f"{cal['method']} of the video score under the '{result['aggregate']['chosen']}' verdict rule"
                   if cal["shipped"] else "none: the calibration failed the leave-one-group-out check; uncalibrated"),
        "fitted_on": cal["fitted_on"], "videos": cal["clips"], "fakes": cal["fakes"], "command": command,
        "checks": [{k: c[k] for k in ("group", "before", "after", "passed")} for c in cal["checks"]]}
    card["selection"] = {"aggregate": result["aggregate"]["chosen"], "why": result["aggregate"]["why"],
                         "rule": "docs (issue 23): pre-registered selection", "command": command}
    atomic_write(path, json.dumps(card, indent=1) + "\n")


def plain(value):
    """JSON for the numpy and dataclass values of a result."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Estimate):
        return asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="SavedModel folder")
    parser.add_argument("--pool", type=Path, required=True, help="pool CSV (deepfake-detector pool)")
    parser.add_argument("--out", type=Path, required=True, help="work folder: scans, crops, selection.json/.md")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--install", action="store_true",
                        help="write the chosen calibration (or none) and threshold into the model's model.json")
    args = parser.parse_args(argv)
    from detector.runtime import resolve_device

    device = resolve_device(args.device)
    command = command_line("select", argv)
    result = select(Model(args.model, device), read_pool(args.pool), args.out, device)
    text = markdown(result)
    atomic_write(args.out / "selection.json", json.dumps(plain(result), indent=1) + "\n")
    atomic_write(args.out / "selection.md", text)
    print(text)
    if args.install:
        install(args.model, result, command)
        print(f"written to {args.model / 'model.json'}", file=sys.stderr)
    if result["aggregate"]["chosen"] != Settings.aggregate:
        print(f"note: the chosen rule {result['aggregate']['chosen']!r} is not the scanner's default "
              f"{Settings.aggregate!r} (detector/pipeline.py)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
