"""How far do verdicts move when a clip is re-encoded the way platforms re-encode uploads?

    deepfake-detector robustness --model models/default --data ../shared/data/manifest.csv \\
        --split models/default/split.csv --subset val --out work/robustness

Each labelled clip is scanned as it is, then again after each degradation: the whole clip
re-encoded by ffmpeg's libx264 at a lower quality (a higher CRF), or scaled down to a small
rendition. The re-encoded clips are written once, atomically, to OUT/<name>/clips/, and every scan
lands in OUT/<name>/scan/ (OUT/as-is/scan/ for the clips as they are) as the evaluator's do, so an
interrupted run resumes. Per degradation: video AUC with its 95% bootstrap interval, log loss and
accuracy at the model's threshold, and how far each clip's p_fake moved from its score as it is
(mean and largest |Δ|, verdicts that changed).
OUT/robustness.json holds the table, OUT/robustness.csv every clip's p_fake in each form, and
OUT/<name>/ the evaluator's full report. It measures and chooses nothing.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from detector.evaluation.evaluate import report, scan_labelled, select_videos
from detector.evaluation.report import format_auc, format_number, text_table
from detector.files import atomic_write
from detector.scan.model import Model
from detector.scan.scanner import Settings
from detector.scan.status import Status
from detector.runtime import command_line, resolve_device
from detector.data.datasets import SIDES, LabelledVideo
from detector.scan.video import IMAGE_EXTENSIONS, ffmpeg_binary

AS_IS = "as-is"


@dataclass(frozen=True)
class Degradation:
    """One re-encode: libx264 at `crf` (23 is x264's default; higher is lower quality),
    scaled down to `height` lines first where the clip is taller."""
    name: str
    crf: int
    height: int | None = None
    about: str = ""

    def ffmpeg_args(self) -> list[str]:
        scale = ["-vf", f"scale=-2:'min({self.height},ih)'"] if self.height else []
        return [*scale, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(self.crf), "-pix_fmt", "yuv420p"]


DEGRADATIONS = {d.name: d for d in (
    Degradation("crf23", 23, about="a platform's ordinary re-encode"),
    Degradation("crf32", 32, about="a heavy re-encode: fine texture gone"),
    Degradation("crf40", 40, about="a very heavy re-encode: blocking, smeared detail"),
    Degradation("360p", 28, height=360, about="a small mobile rendition: 360 lines at CRF 28"),
)}


@dataclass(frozen=True)
class Outcome:
    """One form of the clips (as they are, or one degradation) against the labels and the as-is scores."""
    name: str
    n: int  # clips scored
    errors: int  # clips that could not be re-encoded or scanned, or had no face
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    log_loss: float | None
    accuracy: float | None
    mean_delta: float | None  # mean |p_fake − p_fake as-is| over clips scored both ways
    max_delta: float | None
    changed: int  # verdicts (FAKE/REAL) that differ from the as-is verdict


def degrade(source: Path, degradation: Degradation, folder: Path) -> Path:
    """`source` re-encoded as `degradation` says, into `folder` (reused when already there: it is
    only ever written whole). Raises RuntimeError with ffmpeg's reason when it cannot be."""
    # Datasets reuse names across folders (FaceForensics++: Deepfakes/000_003.mp4, Face2Face/000_003.mp4),
    # so the source's full path picks the name; the scanner's results name inputs by absolute path.
    tag = hashlib.sha1(str(source.absolute()).encode()).hexdigest()[:10]
    target = (folder / f"{source.stem}-{tag}.mp4").absolute()
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.stem}.{os.getpid()}.partial.mp4"
    command = [ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0", "-an", "-sn",
               *degradation.ffmpeg_args(), str(partial)]
    proc = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"ffmpeg could not re-encode it ({lines[-1] if lines else f'exit {proc.returncode}'})")
    os.replace(partial, target)
    return target


def scan_degraded(model: Model, videos: list[LabelledVideo], degradation: Degradation, out: Path,
                  settings: Settings, device: str, progress: bool) -> list[dict]:
    """The clips re-encoded, then scanned like the evaluator's; a clip that cannot be re-encoded gets
    an error row saying why, and the rest go on."""
    made, failed = [], {}
    for video in videos:
        try:
            made.append(replace(video, path=degrade(video.path, degradation, out / "clips")))
        except RuntimeError as exc:
            failed[video.path] = str(exc)
    scanned = iter(scan_labelled(model, made, out, settings, device, progress) if made else [])
    return [
        {"path": str(video.path), "label": video.label, "score": None, "raw": None, "group": video.method,
         "dataset": video.dataset, "status": Status.ERROR, "predicted": None, "error": failed[video.path]}
        if video.path in failed else next(scanned)
        for video in videos
    ]


def compare(name: str, rows: list[dict], as_is: list[dict], threshold: float, out: Path) -> Outcome:
    """Metrics of one form of the clips (its evaluator's report written to `out`), and how its
    scores moved from the as-is ones (rows in the same order)."""
    scored = [r for r in rows if r["status"] == Status.OK]
    metrics = report(rows, out, threshold)[0]["all"] if scored else None
    both = [(r, a) for r, a in zip(rows, as_is) if r["status"] == Status.OK and a["status"] == Status.OK]
    deltas = [abs(r["score"] - a["score"]) for r, a in both]
    return Outcome(
        name, len(scored), len(rows) - len(scored),
        metrics.auc if metrics else None, metrics.auc_low if metrics else None, metrics.auc_high if metrics else None,
        metrics.log_loss if metrics else None, metrics.accuracy if metrics else None,
        float(np.mean(deltas)) if deltas else None, float(np.max(deltas)) if deltas else None,
        sum(r["predicted"] != a["predicted"] for r, a in both),
    )


def robustness(model: Model, videos: list[LabelledVideo], out: Path, degradations: list[Degradation],
               settings: Settings, device: str = "cpu", progress: bool = True) -> list[Outcome]:
    """Scan the clips as they are and in each degraded form; write the comparison; return it, as-is first."""
    videos = [v for v in videos if v.path.suffix.lower() not in IMAGE_EXTENSIONS]  # stills have no re-encode
    if not videos:
        raise ValueError("no video clips to degrade (photos are left out)")
    threshold = settings.threshold_for(model)
    as_is = scan_labelled(model, videos, out / AS_IS, settings, device, progress)
    forms = {AS_IS: as_is}
    for degradation in degradations:
        forms[degradation.name] = scan_degraded(model, videos, degradation, out / degradation.name, settings,
                                                device, progress)
    outcomes = [compare(name, rows, as_is, threshold, out / name) for name, rows in forms.items()]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["path", "label", "method", "dataset", *forms])
    for i, video in enumerate(videos):
        writer.writerow([video.path, video.label, video.method, video.dataset,
                         *("" if rows[i]["score"] is None else f"{rows[i]['score']:.6f}" for rows in forms.values())])
    atomic_write(out / "robustness.csv", table.getvalue())
    atomic_write(out / "robustness.json", json.dumps({
        "threshold": threshold, "frames": settings.frames,
        "degradations": {d.name: {"about": d.about, "ffmpeg": d.ffmpeg_args()} for d in degradations},
        "outcomes": [asdict(o) for o in outcomes],
    }, indent=1) + "\n")
    return outcomes


def format_outcomes(outcomes: list[Outcome]) -> str:
    header = ["clips", "n", "AUC (95% CI)", "log loss", "acc", "mean |Δp|", "max |Δp|", "verdicts changed"]
    body = [[o.name, str(o.n) + (f" (+{o.errors} not scored)" if o.errors else ""), format_auc(o),
             format_number(o.log_loss), format_number(o.accuracy),
             "-" if o.name == AS_IS else format_number(o.mean_delta),
             "-" if o.name == AS_IS else format_number(o.max_delta),
             "-" if o.name == AS_IS else str(o.changed)] for o in outcomes]
    return text_table(header, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector robustness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="SavedModel folder")
    parser.add_argument("--data", type=Path, help="labelled videos: a folder in a supported layout or a CSV manifest")
    parser.add_argument("--split", type=Path, help="a split CSV from training; with --subset, use one side of it")
    parser.add_argument("--subset", choices=SIDES, default="val", help="side of --split to use (default val)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--degrade", action="append", choices=sorted(DEGRADATIONS), default=None,
                        help="a degradation to apply, repeatable (default: all: "
                             + "; ".join(f"{d.name}, {d.about}" for d in DEGRADATIONS.values()) + ")")
    parser.add_argument("--frames", type=int, default=Settings.frames)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    args = parser.parse_args(argv)
    if args.split is None and args.data is None:
        parser.error("give --data, or --split with --subset")
    try:
        videos = select_videos(args.data, args.split, args.subset)
        device = resolve_device(args.device)
        degradations = [DEGRADATIONS[name] for name in (args.degrade or DEGRADATIONS)]
        outcomes = robustness(Model(args.model, device), videos, args.out, degradations, Settings(frames=args.frames),
                              device)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(format_outcomes(outcomes))
    command = command_line("robustness", argv)
    print(f"{command}\nreport: {args.out}/robustness.json, robustness.csv, and a folder per form", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
