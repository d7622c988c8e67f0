"""The command line: `deepfake-detector COMMAND` (scan, crops, train, evaluate, robustness) and
`python app.py`, which is `deepfake-detector scan`. Scanning's arguments, progress bar, console
lines, summary, exit codes and messages live here and nothing else; the work is the library's
(detector.api). The other commands are their modules' own `main`. Heavy imports (torch,
TensorFlow) wait until the arguments are good."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from detector.scan.aggregation import AGGREGATES, DEFAULT_AGGREGATE
from detector.scan.limits import INPUT_TIMEOUT, MAX_MEGAPIXELS
from detector.scan.status import Status

if TYPE_CHECKING:
    from detector.distributed import RayScanner
    from detector.scan.scanner import Scanner
    from detector.output.results import ResultsFolder

log = logging.getLogger("detector")

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  {prog} --input clip.mp4 --output results
  {prog} --input videos/ --output results --frames 64 -v
  {prog} --input list.txt --output results --model my_model/ --threshold 0.7
  {prog} --input videos/ --output results --aggregate mean --overwrite
  {prog} --input /shared/videos --output results --ray head-node:6379 --workers 8

results/results.csv has one row per input (path,status,label,p_fake,n_frames,n_faces,
n_tracks,seconds,error,...) and results/details/ one JSON per input with every face box,
crop score, track and the reasoning. A rerun into the same folder skips inputs already scanned.

exit status: 0 every input scanned (no face found still counts), 1 some inputs could not be
read, 2 usage, model or ffmpeg error, or the results folder could not be written (full disk,
read-only: the rows written stay, rerun to resume), 130 interrupted (rerun to resume).
One run writes a results folder at a time: a second run on it waits for the first, then scans
only what is left.
"""

RAY_MISSING = '--ray needs Ray, which is not installed: pip install ".[ray]" (or pip install -r requirements-ray.txt)'
LOCAL_RAY = "local"  # --ray without an address

NO_DEFAULT_MODEL = (
    "error: no model installed at {path}.\n"
    "  Pass a SavedModel folder with --model, or train one: deepfake-detector train --help (see README.md)."
)


def parse_args(argv: list[str] | None = None, prog: str = "deepfake-detector scan") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description="Classify face videos (or images) as real or deepfake.",
        epilog=EXAMPLES.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, type=Path,
                        help="a video, an image, a folder (searched recursively) or a .txt list of paths")
    parser.add_argument("--output", required=True, type=Path, help="results folder (created if missing)")
    parser.add_argument("--model", type=Path, default=None,
                        help="SavedModel folder (default: the bundled model in models/default)")
    parser.add_argument("--frames", type=_positive, default=32, help="frames sampled evenly over each clip (default 32)")
    parser.add_argument("--threshold", type=_probability, default=None,
                        help="p_fake at or above which a video is FAKE (default: the model's own, from model.json)")
    parser.add_argument("--batch-size", type=_positive, default=16, help="face crops per model call (default 16)")
    parser.add_argument("--detect-every", type=_positive, default=8, metavar="N",
                        help="search the whole frame for faces every N-th sampled frame (and wherever a face is "
                             "lost); in between, only near the faces already found, which gives the same boxes "
                             "(default 8; 1: the whole frame every time)")
    parser.add_argument("--fast-decode", action="store_true",
                        help="do not decode frames no other frame needs (H.264/HEVC) even where sampled: a sample "
                             "may land a frame or two after its target, which can move p_fake; on H.264 clips it "
                             "gains little over the default, which already skips such frames where unsampled")
    parser.add_argument("--aggregate", choices=AGGREGATES, default=DEFAULT_AGGREGATE,
                        help="large-max: the most suspicious face track's mean among faces at least half the "
                             "largest's size (default); track-max: the most suspicious track of any size; mean: all "
                             "crops averaged; face-weighted: the tracks' means weighted by crops × face size²")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="auto uses a GPU when TensorFlow and torch see one (default auto)")
    parser.add_argument("--runtime", choices=("auto", "onnx", "tensorflow"), default="auto",
                        help="what runs the networks: onnx (ONNX Runtime for the model and MTCNN, faster to start "
                             "and to run on a CPU; each is converted once and cached), tensorflow (the model in "
                             "TensorFlow, MTCNN in torch), or auto: ONNX Runtime for each where it is installed "
                             "and agrees with its framework within 1e-4, else the framework (default auto)")
    parser.add_argument("--max-megapixels", type=_positive_float, default=MAX_MEGAPIXELS, metavar="N",
                        help="refuse, before decoding, an image or video whose header declares more than N megapixels "
                             f"a frame (status unreadable; default {MAX_MEGAPIXELS})")
    parser.add_argument("--input-timeout", type=_positive_float, default=INPUT_TIMEOUT, metavar="SECONDS",
                        help="stop an input still being decoded or scanned after SECONDS (status error; "
                             f"default {INPUT_TIMEOUT:g}); the batch goes on")
    parser.add_argument("--overwrite", action="store_true",
                        help="scan again inputs already in the results (also those that timed out or ended the process)")
    parser.add_argument("--no-report", dest="report", action="store_false",
                        help="do not write the HTML report (RESULTS/report.html)")
    parser.add_argument("--explain", action="store_true",
                        help="add heat-maps of the most suspicious face crops to the report (slower)")
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS",
                        help="scan on Ray workers: alone, a Ray started on this machine for this run; with the "
                             "ADDRESS of a cluster (HEAD:6379, or auto for the one `ray start` runs here), on its "
                             "machines, which must see the inputs and the model at the same paths (README)")
    parser.add_argument("--workers", type=_positive, default=None, metavar="N",
                        help="with --ray: workers, each loading the model once (default: one per GPU where the "
                             "model goes on GPUs, else one per two CPUs of the cluster)")
    parser.add_argument("--version", action="version", version=f"deepfake-detector {_version()}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="errors and the summary only: no progress bar, no verdict lines")
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="also the model used, the files skipped for their extension, "
                                "and tracebacks of internal errors")
    args = parser.parse_args(argv)
    if args.workers is not None and args.ray is None:
        parser.error("--workers needs --ray")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        parser.error(RAY_MISSING)
    return args


def _version() -> str:
    """The installed package's version (pyproject.toml), read without importing anything heavy."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepfake-detector")
    except PackageNotFoundError:
        return "(not installed: pip install -e .)"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must lie in [0, 1]")
    return value


# name -> (module whose main(argv) runs it, what it does); `scan` is this module's scan_main
COMMANDS = {
    "scan": ("detector.cli", "classify face videos or images as real or deepfake (the default command)"),
    "crops": ("detector.data.crops", "cut face crops from labelled clips or photos, as the scanner does, for training and checks"),
    "train": ("detector.training.train", "train a detector on face crops and export it as a SavedModel"),
    "evaluate": ("detector.evaluation.evaluate", "scan labelled clips and report AUC, log loss and more per group"),
    "robustness": ("detector.evaluation.robustness", "scan labelled clips as they are and re-encoded; how far verdicts move"),
    "pool": ("detector.evaluation.pool", "write a validation pool and a held-out side, split by identity, for select"),
    "select": ("detector.evaluation.selection", "choose the verdict rule and calibration on a pool by fixed rules"),
    "soup": ("detector.training.soup", "average the weights of several runs of one recipe into one model"),
    "study": ("detector.evaluation.study", "compare trained models on a validation pool from their crops, with intervals"),
}
COMMAND_EXAMPLES = """\
examples:
  deepfake-detector scan --input videos/ --output results
  deepfake-detector crops --data ../shared/data/manifest.csv --out work/crops --frames 48
  deepfake-detector train --crops work/crops --out work/run --init imagenet
  deepfake-detector evaluate --model models/default --data ../shared/data/manifest.csv --out work/eval
  deepfake-detector robustness --model models/default --data ../shared/data/manifest.csv --out work/robust

`deepfake-detector COMMAND --help` tells more. A first argument that is an option, not a command,
is scanning's: `deepfake-detector --input videos/ --output results` scans, as `python app.py` does.
"""


def main(argv: list[str] | None = None, prog: str = "deepfake-detector") -> int:
    """The `deepfake-detector` console script and `python -m detector`: run one command; its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        name, rest = argv[0], argv[1:]
        if name == "scan":
            return scan_main(rest, f"{prog} scan")
        return importlib.import_module(COMMANDS[name][0]).main(rest)
    if not argv or argv[0] in ("-h", "--help"):
        parser = argparse.ArgumentParser(
            prog=prog, usage=f"{prog} COMMAND [options]", epilog=COMMAND_EXAMPLES,
            description="Say whether face videos are deepfakes, how sure, and why.\n\ncommands:\n" + "\n".join(
                f"  {name:<11} {what}" for name, (_, what) in COMMANDS.items()),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.print_help(sys.stdout if argv else sys.stderr)
        return EXIT_OK if argv else EXIT_USAGE
    if not argv[0].startswith("-"):
        print(f"{prog}: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} ({prog} --help)",
              file=sys.stderr)
        return EXIT_USAGE
    return scan_main(argv, prog)


def scan_main(argv: list[str] | None = None, prog: str = "deepfake-detector scan") -> int:
    """`deepfake-detector scan` and `python app.py`; returns the exit status."""
    args = parse_args(argv, prog)
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("detector").setLevel(level)
    if not args.input.exists() and not args.input.is_symlink():
        print(f"error: --input {args.input} does not exist", file=sys.stderr)
        return EXIT_USAGE
    return scan(args)


def scan(args: argparse.Namespace) -> int:
    """Load the model (or start the Ray workers, which load it), scan every input, report; the exit status."""
    from detector import api

    load, errors = api.load, (api.ModelError, api.DeviceError, api.FfmpegError)
    if args.ray is not None:
        from detector.distributed import ClusterError, RayScanner

        load = partial(RayScanner, address=None if args.ray == LOCAL_RAY else args.ray, workers=args.workers)
        errors += (ClusterError,)
    try:
        scanner = load(args.model, args.device, frames=args.frames, batch_size=args.batch_size,
                       aggregate=args.aggregate, threshold=args.threshold, detect_every=args.detect_every,
                       fast_decode=args.fast_decode, runtime=args.runtime, max_megapixels=args.max_megapixels,
                       input_timeout=args.input_timeout)
    except api.NoDefaultModel as exc:
        print(NO_DEFAULT_MODEL.format(path=exc.path), file=sys.stderr)
        return EXIT_USAGE
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return scan_with(args, scanner)
    finally:
        if args.ray is not None:
            scanner.close()  # the workers, and the Ray this run started: also after Ctrl-C


def scan_with(args: argparse.Namespace, scanner: Scanner | RayScanner) -> int:
    """Scan every input into the results folder with a ready scanner, report; the exit status."""
    from detector import api
    from detector.scan.scanner import find_inputs

    try:
        results = api.ResultsFolder(args.output)
    except api.ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    inputs = find_inputs(args.input, exclude=results.folder)
    if not inputs.paths:
        print(f"error: no videos or images found in {args.input}", file=sys.stderr)
        return EXIT_USAGE
    log.info("model %s (%s, runtime %s), threshold %.3f, %d input(s)", scanner.model.path,
             scanner.model.fingerprint, scanner.model.runtime, scanner.settings.threshold_for(scanner.model),
             len(inputs.paths))
    if hasattr(scanner, "detector"):  # in this process, not on Ray workers
        log.info("MTCNN runs in %s", scanner.detector.runtime)
    for path in inputs.skipped:
        log.info("skipped (not a video or image extension): %s", path)
    summary = run_batch(scanner, list(inputs.paths), results, overwrite=args.overwrite, progress=not args.quiet,
                        report=args.report, explain=args.explain)
    summary.ignored = len(inputs.skipped)
    print(summary.line(), file=sys.stderr)
    print(f"Results: {results.csv_path}", file=sys.stderr)
    if args.report:
        print(f"Report: {results.folder / 'report.html'}", file=sys.stderr)
    if summary.interrupted:
        print("Interrupted: the results above are saved; run the same command again to resume.", file=sys.stderr)
    if summary.failed:
        print(f"error: {summary.failed}. The rows written before are kept: make room (or make the folder writable) "
              "and run the same command again to resume.", file=sys.stderr)
    return summary.exit_code


@dataclass
class BatchSummary:
    """Counts kept while a batch runs, for the summary line and the exit status."""
    statuses: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    skipped: int = 0  # already in the results
    scanned: int = 0
    ignored: int = 0  # files in the input folders skipped for their extension
    seconds: float = 0.0
    interrupted: bool = False
    failed: str = ""  # why the results folder could not be written, where it stopped the batch

    def line(self) -> str:
        parts = [f"{self.labels[k]} {k}" for k in ("FAKE", "REAL")]
        parts += [f"{self.statuses[k]} {k}" for k in (Status.NO_FACE, Status.UNREADABLE, Status.ERROR)]
        per = f" ({self.seconds / self.scanned:.1f} s per input)" if self.scanned else ""
        head = "Interrupted after" if self.interrupted else "Stopped after" if self.failed else "Done:"
        ignored = (f"; {self.ignored} other file{'s' if self.ignored != 1 else ''} skipped for the extension "
                   "(-v lists them)") if self.ignored else ""
        return (f"{head} {self.scanned} scanned in {self.seconds:.1f} s{per}, {self.skipped} already in results — "
                + ", ".join(parts) + ignored)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed:
            return EXIT_USAGE
        return EXIT_UNREADABLE if self.statuses[Status.UNREADABLE] or self.statuses[Status.ERROR] else EXIT_OK


def run_batch(scanner: Scanner, inputs: list[Path], results: ResultsFolder, overwrite: bool = False, progress: bool = True,
              report: bool = True, explain: bool = False) -> BatchSummary:
    """Scan inputs into results under a progress bar, a line per verdict; Ctrl-C keeps what finished,
    and so does a results folder that can no longer be written (the summary says why)."""
    from detector.api import ResultsError, scan_batch
    from detector.output.writers import get_writer

    line = get_writer("line")
    summary = BatchSummary()
    started = time.perf_counter()
    bar = tqdm(total=len(inputs), unit="input", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    if inputs:
        bar.set_postfix_str(inputs[0].name[-40:], refresh=False)
    try:
        waiting = partial(bar.write, file=sys.stderr) if progress else None
        with closing(scan_batch(scanner, inputs, results, overwrite, report, explain, waiting)) as batch:
            for done, item in enumerate(batch, start=1):
                if item.skipped:
                    summary.skipped += 1
                else:
                    summary.scanned += 1
                    if progress:  # one line per input for the person watching; scripts read results.csv
                        bar.write(line(item.result), file=sys.stdout)
                summary.statuses[item.row.status] += 1
                if item.row.label:
                    summary.labels[item.row.label] += 1
                if done < len(inputs):
                    bar.set_postfix_str(inputs[done].name[-40:], refresh=False)
                bar.update()
    except KeyboardInterrupt:
        summary.interrupted = True
    except ResultsError as exc:
        summary.failed = str(exc)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - started
    return summary
