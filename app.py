"""deepfake-detector: say whether face videos are deepfakes, how sure, and why.

A thin command line over detector.pipeline; see README.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from detector.aggregation import AGGREGATES

EXAMPLES = """\
examples:
  python app.py --input clip.mp4 --output results
  python app.py --input videos/ --output results --frames 64 -v
  python app.py --input list.txt --output results --model my_model/ --threshold 0.7
  python app.py --input videos/ --output results --aggregate mean --overwrite

results/results.csv has one row per input (path,status,label,p_fake,n_frames,n_faces,
n_tracks,seconds,error,...) and results/details/ one JSON per input with every face box,
crop score, track and the reasoning. A rerun into the same folder skips inputs already scanned.

exit status: 0 every input scanned (no face found still counts), 1 some inputs could not be
read, 2 usage or model error, 130 interrupted (rerun to resume).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="app.py", description="Classify face videos (or images) as real or deepfake.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("--aggregate", choices=AGGREGATES, default=AGGREGATES[0],
                        help="track-max: the most suspicious face track's mean (default); mean: all crops averaged")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="auto uses a GPU when TensorFlow and torch see one (default auto)")
    parser.add_argument("--overwrite", action="store_true", help="scan again inputs already in the results")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="a line per input, tracebacks for errors")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must lie in [0, 1]")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("detector").setLevel(level)
    if not args.input.exists() and not args.input.is_symlink():
        print(f"error: --input {args.input} does not exist", file=sys.stderr)
        return 2

    from detector import api  # heavy imports (torch, tensorflow) only once the arguments are good

    return api.run(
        source=args.input, output=args.output, model_path=args.model, device=args.device,
        settings=api.Settings(frames=args.frames, batch_size=args.batch_size,
                              aggregate=args.aggregate, threshold=args.threshold),
        overwrite=args.overwrite, progress=not args.quiet,
    )


if __name__ == "__main__":
    sys.exit(main())
