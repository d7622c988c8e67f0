"""Does dropping frames nothing needs before decoding change what the scanner sees? For each clip,
decode its samples twice: as the scanner does (H.264 frames no other frame refers to, and not
sampled, dropped before the decoder: video.DROP_LIMIT) and with every frame decoded; compare the
frames bit for bit and their times, and the CPU seconds ffmpeg spent each way. Samples at other
times than foreseen are no fault (the scanner then decodes again, in full); samples at the
foreseen times but different from a full decode would be one (exit status 1).

    python bench/decode_check.py ../shared/data/manifest.csv [--frames 32] [--limit N]
    python bench/decode_check.py some_folder_of_videos/
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, help="a labelled-clip manifest (.csv), or a folder or list of videos")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (default 32, the scanner's)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from clips import clip_paths
    from detector.scan.scanner import _same_times
    from detector.scan.video import Decoding, VideoError, probe

    paths = clip_paths(args.clips, args.limit)

    counts = {"nothing dropped": 0, "identical": 0, "decoded again": 0, "WRONG": 0}
    cpu = {"dropping": 0.0, "every frame": 0.0}
    for i, path in enumerate(paths, 1):
        try:
            info = probe(path)
            runs = {}
            for way, drop in (("dropping", True), ("every frame", False)):
                before = _children_cpu()
                with Decoding(path, args.frames, info, drop_needless=drop) as decoding:
                    frames = [(frame.time, frame.image) for frame in decoding]
                    expected = decoding.expected_times
                time.sleep(0.05)  # let the ffmpeg child be reaped into RUSAGE_CHILDREN
                cpu[way] += _children_cpu() - before
                runs[way] = frames, expected
        except VideoError as exc:
            print(f"[{i}/{len(paths)}] {path.name}: unreadable ({exc})")
            continue
        (fast, expected), (full, _) = runs["dropping"], runs["every frame"]
        same = len(fast) == len(full) and all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(fast, full))
        if expected is None:
            outcome = "nothing dropped"
        elif not _same_times([t for t, _ in fast], expected):
            outcome = "decoded again"
        else:
            outcome = "identical" if same else "WRONG"
        counts[outcome] += 1
        print(f"[{i}/{len(paths)}] {path.name}: {outcome} ({len(fast)} samples)", flush=True)
    print(f"\n{len(paths)} clips: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    print(f"ffmpeg CPU: dropping {cpu['dropping']:.1f} s, every frame {cpu['every frame']:.1f} s "
          f"({cpu['dropping'] / max(cpu['every frame'], 1e-9):.2f}×)")
    return 0 if counts["WRONG"] == 0 else 1


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
