"""Does a change to the scanner's code move verdicts? Scan the same clips with this tree's code and
with another tree's (an older commit unpacked: `git archive COMMIT | tar -x -C /tmp/old`), the same
model and default settings, each tree in a process of its own, and compare each clip's p_fake and
label. Targets: mean |Δ p_fake| ≤ 0.01 and labels changed on at most 2% of the clips.

    python bench/old_vs_new.py ../shared/data/manifest.csv --baseline /tmp/old [--model DIR] [--limit N] [--csv OUT]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEAN_TOLERANCE, LABEL_CHANGES = 0.01, 0.02

# Runs in each tree: its own `detector` package first on the path, the same public API in both.
SCAN = """
import json, sys
sys.path.insert(0, sys.argv[1])
import detector
paths = json.load(open(sys.argv[2]))
scanner = detector.load(sys.argv[4] or None, "cpu")
found = {str(path): [str(result.status), result.p_fake, result.label]
         for path, result in zip(paths, scanner.scan_many(paths))}
json.dump(found, open(sys.argv[3], "w"))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, help="a labelled-clip manifest (.csv), or a folder or list of videos")
    parser.add_argument("--baseline", type=Path, required=True, help="the other tree (its app.py and detector/)")
    parser.add_argument("--model", type=Path, default=None, help="SavedModel folder (default: this tree's bundled model)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--csv", type=Path, default=None, help="also write each clip's two scores here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from clips import clip_paths

    paths = [str(p) for p in clip_paths(args.clips, args.limit)]
    model = str((args.model or ROOT / "models" / "default").resolve())
    with tempfile.TemporaryDirectory() as tmp:
        listed = Path(tmp) / "paths.json"
        listed.write_text(json.dumps(paths))
        runs = {name: (tree, Path(tmp) / f"{name}.json") for name, tree in (("new", ROOT), ("old", args.baseline.resolve()))}
        procs = [subprocess.Popen([sys.executable, "-c", SCAN, str(tree), str(listed), str(out), model], cwd=tree,
                                  env={**os.environ, "PYTHONPATH": ""}) for tree, out in runs.values()]
        if any(proc.wait() for proc in procs):
            raise SystemExit("a scan failed")
        new, old = (json.loads(out.read_text()) for _, out in runs.values())
    rows = [(path, *old[path], *new[path]) for path in paths]
    both = [r for r in rows if r[2] is not None and r[5] is not None]
    deltas = [abs(r[5] - r[2]) for r in both]
    changed = [r for r in rows if r[3] != r[6]]
    for path, *values in rows:
        if values[1] is not None and values[4] is not None and abs(values[4] - values[1]) > MEAN_TOLERANCE or values[2] != values[5]:
            print(f"  {Path(path).name}: old {values[0]} {values[1]} {values[2]}, new {values[3]} {values[4]} {values[5]}")
    mean = sum(deltas) / len(deltas) if deltas else float("nan")
    print(f"{len(rows)} clips, p_fake on both sides for {len(both)}: mean |Δ| {mean:.4f}, "
          f"max {max(deltas, default=float('nan')):.4f}; labels changed on {len(changed)} "
          f"({len(changed) / max(len(rows), 1):.1%}); targets: mean ≤ {MEAN_TOLERANCE}, changes ≤ {LABEL_CHANGES:.0%}")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("path", "old_status", "old_p_fake", "old_label", "new_status", "new_p_fake",
                                           "new_label"), *rows])
    return 0 if mean <= MEAN_TOLERANCE and len(changed) <= LABEL_CHANGES * len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
