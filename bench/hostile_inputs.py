"""What each hostile input costs the scanner: peak RSS and seconds, beside a normal clip's.

    nice -n 19 python bench/hostile_inputs.py [--model DIR] [--frames 8] [--dir DIR] [--json OUT]

Makes each input of tests/hostile.py (at the sizes the issue names: a 20,000 × 20,000 PNG bomb,
a 30,000 × 30,000 JPEG, MP4 streams declaring 30,000 and 15,000 square, a 10,000-frame GIF, an
MP4 random after its first MB, a FIFO, a link to /dev/zero) and a normal face clip, then scans
each in a fresh process, as `app.py --input FILE` does, and reads that process's peak RSS
(ru_maxrss) and its children's largest (RUSAGE_CHILDREN: ffmpeg's, though the model's load may
start a larger one: a scan's ffmpeg shows only where the peak grows past the figure after load),
with the row it wrote. The normal clip is scanned once first, unreported, so the model's ONNX
conversion is cached and no later figure carries it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter per input: scan it into a results folder, print the row and the peaks.
ONE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import detector
scanner = detector.load(sys.argv[2], "cpu", frames=int(sys.argv[3]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
started = time.perf_counter()
item = next(detector.scan_batch(scanner, [sys.argv[4]], detector.ResultsFolder(sys.argv[5])))
print(json.dumps({"status": item.row.status, "error": item.row.error, "seconds": time.perf_counter() - started,
                  "rss_after_load_mb": base / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_rss_after_load_mb": children / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def make_inputs(folder: Path) -> dict[str, Path]:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import hostile
    from synthetic import face_clip

    noise = hostile.noise_clip(folder / "noise.mp4", seconds=1.5)
    return {
        "normal clip (640x480, 2 s)": face_clip(folder / "normal.mp4"),
        "PNG bomb 20000 x 20000": hostile.png_bomb(folder / "bomb.png", 20000),
        "PNG bomb 60000 x 60000": hostile.png_bomb(folder / "bomb60k.png", 60000),
        "JPEG declaring 30000 x 30000": hostile.jpeg_bomb(folder / "bomb.jpg", 30000),
        "MP4 stream declaring 30000 x 30000": hostile.stream_bomb_mp4(folder / "stream30k.mp4", 30000),
        "MP4 stream declaring 15000 x 15000": hostile.stream_bomb_mp4(folder / "stream15k.mp4", 15000),
        "GIF of 10,000 frames": hostile.many_frames_gif(folder / "many.gif"),
        "MP4 random after 1 MB": hostile.random_after(folder / "rotten.mp4", noise),
        "FIFO named pipe.mp4": hostile.fifo(folder / "pipe.mp4"),
        "symlink to /dev/zero": hostile.link_to_dev_zero(folder / "zero.mp4"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        inputs = make_inputs(Path(tmp))
        inputs = {"(warm-up)": inputs["normal clip (640x480, 2 s)"], **inputs}
        for name, path in inputs.items():
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", ONE, str(ROOT), str(args.model), str(args.frames), str(path),
                                   str(Path(tmp) / "results" / name)], capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                figures[name] = {"failed": proc.returncode, "stderr": proc.stderr[-500:]}
            else:
                figures[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            figures[name]["process_seconds"] = time.perf_counter() - started
            f = figures[name]
            print(f"{name:<36} " + (f"{f['status']:<10} {f['seconds']:6.2f} s  peak RSS {f['peak_rss_mb']:6.0f} MB "
                                    f"(after load {f['rss_after_load_mb']:.0f}), children {f['children_peak_rss_mb']:.0f} MB "
                                    f"(after load {f['children_rss_after_load_mb']:.0f})"
                                    f"  {f['error'][:90]}" if "status" in f else f"FAILED {f}"), flush=True)
    figures.pop("(warm-up)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
