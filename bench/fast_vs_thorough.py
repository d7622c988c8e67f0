"""Do the scanner's shortcuts change verdicts? Scan the same clips the fast way (a full face
search every 8th frame and faces searched only near their last place in between: --detect-every 8,
the default; with --fast-decode, frames no other frame needs also left undecoded) and the thorough
way (a full face search on every frame; frames decoded as by default, which gives a full
decode's samples bit for bit: bench/decode_check.py), with the same model, and compare each
clip's p_fake. Target: every clip within 0.02.

    python bench/fast_vs_thorough.py ../shared/data/manifest.csv [--detect-every 8] [--fast-decode] [--limit N] [--csv OUT]
    python bench/fast_vs_thorough.py some_folder_of_videos/
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.02


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, help="a labelled-clip manifest (.csv), or a folder or list of videos")
    parser.add_argument("--model", type=Path, default=None, help="SavedModel folder (default: the bundled model)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--csv", type=Path, default=None, help="also write each clip's two scores here")
    parser.add_argument("--detect-every", type=int, default=8, help="the fast scan's full-search interval (default 8)")
    parser.add_argument("--fast-decode", action="store_true",
                        help="the fast scan also skips decoding frames no other frame needs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch  # noqa: F401  — before tensorflow

    import detector
    from clips import clip_paths

    paths = clip_paths(args.clips, args.limit)
    fast = detector.load(args.model, "cpu", detect_every=args.detect_every, fast_decode=args.fast_decode)
    thorough = detector.load(args.model, "cpu", detect_every=1)
    rows, seconds = [], {"fast": 0.0, "thorough": 0.0}
    for i, path in enumerate(paths, 1):
        a, b = fast.scan(path), thorough.scan(path)
        seconds["fast"] += a.seconds
        seconds["thorough"] += b.seconds
        delta = abs(a.p_fake - b.p_fake) if a.p_fake is not None and b.p_fake is not None else None
        rows.append((str(path), a.status, b.status, a.p_fake, b.p_fake, delta, a.n_faces, b.n_faces))
        print(f"[{i}/{len(paths)}] {path.name}: fast {a.status} {_p(a.p_fake)}, thorough {b.status} {_p(b.p_fake)}"
              + (f", |Δ| {delta:.4f}" if delta is not None else ""), flush=True)
    compared = [r for r in rows if r[5] is not None]
    same_status = sum(r[1] == r[2] for r in rows)
    worst = max(compared, key=lambda r: r[5]) if compared else None
    over = [r for r in compared if r[5] > TOLERANCE]
    print(f"\n{len(rows)} clips, same status in {same_status}; p_fake compared on {len(compared)}: "
          f"max |Δ| {worst[5]:.4f} ({Path(worst[0]).name}), median "
          f"{sorted(r[5] for r in compared)[len(compared) // 2]:.4f}, over {TOLERANCE}: {len(over)}"
          if worst else f"\n{len(rows)} clips, none scored both ways")
    print(f"time: fast {seconds['fast']:.1f} s, thorough {seconds['thorough']:.1f} s "
          f"({seconds['thorough'] / max(seconds['fast'], 1e-9):.2f}× as long)")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("path", "fast_status", "thorough_status", "fast_p_fake", "thorough_p_fake",
                                           "abs_delta", "fast_faces", "thorough_faces"), *rows])
    return 0 if not over and same_status == len(rows) else 1


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s in all)")
    sys.exit(code)
