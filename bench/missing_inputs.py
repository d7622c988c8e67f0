"""A long list file that is mostly missing paths: do rows keep coming as fast at the end as at the start?

    python bench/missing_inputs.py [--entries 100000] [--present 10] [--model DIR] [--no-report] [--dir DIR]

Writes a list of --entries paths, --present of them copies of samples/astronaut.mp4 spread through
it and the rest files that do not exist, and scans it as `app.py --input LIST` does (scan_batch into
a results folder, with the HTML report unless --no-report), in a temporary folder under --dir
(default: the system's temp dir; /dev/shm leaves out the disk's fsyncs, ~4 per input). Prints the seconds each tenth of the inputs took: a cost per input that
grows with the inputs before it (the report recounting every record, as it once did) shows as
later tenths taking longer, while a flat cost keeps them level.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="paths in the list (default 100000)")
    parser.add_argument("--present", type=int, default=10, help="of them, real clips (default 10)")
    parser.add_argument("--model", type=Path, help="SavedModel folder (default: as bench/benchmark.py)")
    parser.add_argument("--no-report", dest="report", action="store_false", help="without the HTML report")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary folder")
    args = parser.parse_args()
    if not 0 <= args.present <= args.entries or args.entries < 10:
        parser.error("--entries must be at least 10 and --present at most --entries")
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from benchmark import cpu_name, pick_model

    import detector
    from detector.scan.scanner import find_inputs

    model, how = pick_model(args.model)
    scanner = detector.load(model, "cpu", frames=8)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        real = {round(i * args.entries / max(args.present, 1)) for i in range(args.present)}
        entries = []
        for i in range(args.entries):
            if i in real:
                shutil.copy(ROOT / "samples" / "astronaut.mp4", folder / f"clip{i}.mp4")
            entries.append(f"clip{i}.mp4")
        (folder / "list.txt").write_text("\n".join(entries) + "\n")
        started = time.perf_counter()
        inputs = find_inputs(folder / "list.txt").paths
        listed = time.perf_counter() - started
        results = detector.ResultsFolder(folder / "results")
        tenth, marks = args.entries // 10, []
        started = time.perf_counter()
        for done, _ in enumerate(detector.scan_batch(scanner, inputs, results, report=args.report), start=1):
            if done % tenth == 0:
                marks.append(time.perf_counter())
        total = time.perf_counter() - started
        rows = sum(1 for _ in (folder / "results" / "results.csv").open()) - 1
    spans = [b - a for a, b in zip([started, *marks], marks)]
    print(f"{args.entries:,} inputs ({args.present} real, the rest missing), report {'on' if args.report else 'off'}, "
          f"model {how}, in {args.dir or tempfile.gettempdir()}, {cpu_name()}, {os.cpu_count()} CPUs")
    print(f"list read in {listed:.2f} s; {rows:,} rows in {total:.1f} s ({args.entries / total:,.0f} inputs/s)")
    print("seconds per tenth: " + " ".join(f"{s:.1f}" for s in spans))
    print(f"last tenth / first tenth: {spans[-1] / spans[0]:.2f}×")
    return 0 if rows == args.entries else 1


if __name__ == "__main__":
    sys.exit(main())
