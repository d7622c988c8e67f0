"""What the HTML report costs per input, against the scan it reports on; and what --explain adds.

    python bench/report_cost.py [--model DIR] [--runs 3] [--frames 32] [--rows 10000]

Scans bench/benchmark.py's 10-s 1080p clip with the real scanner (one warm-up, --runs measured)
and times the report's two parts for the same input: making its evidence (the thumbnails,
detector.scan.evidence.collect, part of Scanner.scan) and HtmlReport.add (writing the thumbnails, the
input's page, its row chunk and the summary), the latter into a report of 1 and of --rows inputs.
Then --explain's heat-maps for the same crops (after one call that builds the explainer).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_SHARE = 0.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="SavedModel folder (default: as bench/benchmark.py)")
    parser.add_argument("--runs", type=int, default=3, help="measured scans after one warm-up (default 3)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--rows", type=int, default=10_000, help="inputs already in the large report (default 10000)")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from benchmark import CACHE, make_clip, pick_model

    import detector
    from detector.scan.evidence import collect
    from detector.output.html_report import HtmlReport
    from detector.output.results import ResultsFolder, Row
    from detector.output.writers import get_writer

    CACHE.mkdir(parents=True, exist_ok=True)
    clip = make_clip(CACHE / "face_1080p30_10s.mp4")
    model, how = pick_model(args.model)
    scanner = detector.load(model, "cpu", frames=args.frames)
    scanner.scan(clip)
    scans, results = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        results.append(scanner.scan(clip))
        scans.append(time.perf_counter() - started)
    result = results[-1]
    crops = _crops(scanner, clip)
    scores = [f.p_fake for frame in result.frames for f in frame.faces]
    tracks = [f.track for frame in result.frames for f in frame.faces]
    evidence = _median(lambda: collect(crops, scores, tracks), 5)

    def add_cost(existing: int) -> float:
        with tempfile.TemporaryDirectory() as folder:
            folder = ResultsFolder(Path(folder))
            for i in range(existing):  # the rows of earlier inputs, in memory only: add() writes one chunk
                folder.rows[f"/videos/{i}.mp4"] = Row(f"/videos/{i}.mp4", "ok", "REAL", 0.1)
            report = HtmlReport(folder)
            row = get_writer("row")(result)
            return _median(lambda: report.add(row, replace(result, path=f"/new/{time.perf_counter_ns()}.mp4")), 5)

    small, large = add_cost(1), add_cost(args.rows)
    scanner.explainer(np.stack(crops[:3]))  # builds the explainer (Keras rebuild) once per batch
    explain = _median(lambda: collect(crops, scores, tracks, scanner.explainer), 3) - evidence
    scan = statistics.median(scans)
    cost = evidence + large
    print(f"model: {model} ({how}); clip {clip.name}, {result.n_faces} faces, {len(result.evidence.thumbnails)} thumbnails")
    print(f"scan (median of {args.runs}): {scan:.2f} s per input")
    print(f"report: thumbnails {evidence * 1e3:.1f} ms + HtmlReport.add {small * 1e3:.1f} ms at 1 input, "
          f"{large * 1e3:.1f} ms at {args.rows:,} inputs")
    print(f"report cost: {cost * 1e3:.1f} ms per input = {cost / scan:.1%} of scan time "
          f"(target ≤ {TARGET_SHARE:.0%}: {'met' if cost / scan <= TARGET_SHARE else 'NOT met'})")
    print(f"--explain ({scanner.explainer.method}, 3 crops): +{explain:.2f} s per input")
    return 0


def _crops(scanner, clip: Path) -> list:
    """The clip's face crops, as the scanner made them (its front half, run again)."""
    from detector.scan.scanner import extract_faces

    return [c.image for c in extract_faces(clip, scanner.detector, scanner.settings.frames, scanner.model.input_size).crops]


def _median(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
