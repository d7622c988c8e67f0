"""Speed and memory of the real scanner on a realistic clip: seconds per clip, per stage, peak RSS.

    python bench/benchmark.py [--model DIR] [--runs 5] [--frames 32] [--json OUT] [--clip VIDEO]

Without --clip it makes (once, cached in a temp folder) a 10-s 1080p30 H.264 clip of the
astronaut photo (face about 270 px) drifting over the moving testsrc2 pattern, encoded with
libx264's default preset. Without --model it uses models/default, else builds (once, cached) an
untrained EfficientNetV2-B0 with the trainer's own builder: an untrained model runs exactly as
fast as a trained one.

The measured scans run in a fresh child process, so its peak RSS is the scanner's alone (not the
clip or model building); the ffmpeg decoder it starts is sampled beside it. Stages are timed by
wrapping the stage functions from the outside; the product code is not changed:
  probe      ffmpeg reading the container header
  decode     time the scanner waits for the next sampled frame (decoding runs on a reader
             thread, so decoding that overlaps detection is not counted here)
  detect     MTCNN (FaceDetector.detect, including its downscale)
  crop       crop_face
  model      Model.predict on all crops
  aggregate  track linking, the verdict and the per-frame details
  other      the rest of Scanner.scan (stacking crops, bookkeeping)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "detector-bench"
STAGES = ("probe", "decode", "detect", "crop", "model", "aggregate", "other")
TARGET_SECONDS, TARGET_RSS_GB = 3.0, 2.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="SavedModel folder (default: models/default, else an untrained B0)")
    parser.add_argument("--runs", type=int, default=5, help="measured scans after one warm-up (default 5)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (default 32, the product's)")
    parser.add_argument("--clip", type=Path, help="scan this video instead of the generated 1080p clip")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: measure, write JSON here
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.worker:
        return _worker(args)

    CACHE.mkdir(exist_ok=True)
    clip = args.clip.resolve() if args.clip else make_clip(CACHE / "face_1080p30_10s.mp4")
    model, note = pick_model(args.model)
    print(f"clip:  {clip}\nmodel: {model} ({note})\nload:  {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} (1/5/15 min) on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--worker", str(out), "--model", str(model), "--clip", str(clip),
               "--runs", str(args.runs), "--frames", str(args.frames)]
        subprocess.run(cmd, check=True)
        result = json.loads(out.read_text())
    result.update(clip=str(clip), model=str(model), model_note=note,
                  load_after=[round(v, 2) for v in os.getloadavg()], cores=os.cpu_count())
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


def make_clip(path: Path) -> Path:
    """10 s of 1080p30 H.264 (libx264 default preset): the astronaut photo, full frame height (face
    about 270 px), drifting over the moving testsrc2 pattern."""
    if not path.exists():
        from detector.synthetic import face_clip

        partial = path.with_name("partial_" + path.name)
        face_clip(partial, seconds=10, size="1920x1080", fps=30, face=1.0, extra=("-an",), background="testsrc2")
        partial.rename(path)
    return path


def pick_model(given: Path | None) -> tuple[Path, str]:
    if given is not None:
        return given.resolve(), "given"
    default = ROOT / "models" / "default"
    if (default / "saved_model.pb").exists():
        return default, "models/default"
    built = CACHE / "untrained_b0"
    if not (built / "saved_model.pb").exists():
        print("building an untrained EfficientNetV2-B0 (once) …", flush=True)
        subprocess.run([sys.executable, "-c", BUILD_MODEL, str(built), str(ROOT)], check=True)
    return built, "untrained EfficientNetV2-B0: same architecture, same speed as a trained one"


BUILD_MODEL = """
import sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[2])))
from detector.training.train import build_model  # the product's own network, untrained
build_model().save(sys.argv[1])
"""


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class StageClock:
    """Wall and CPU seconds per stage for the current scan, filled by wrappers around the stage
    functions. CPU time is the whole process's during the stage: on a loaded machine it is the
    steadier number (wall time also counts waiting for cores other programs hold)."""

    def __init__(self):
        self.now: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, stage: str, started: tuple[float, float]) -> None:
        self.now[stage] = self.now.get(stage, 0.0) + time.perf_counter() - started[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + _cpu() - started[1]

    def wrap(self, stage: str, fn):
        def timed(*a, **k):
            started = time.perf_counter(), _cpu()
            try:
                return fn(*a, **k)
            finally:
                self.add(stage, started)
        return timed

    def wrap_iter(self, stage: str, fn):
        """A generator function whose every next() (the wait for the next item) is timed."""
        def timed(*a, **k):
            it = iter(fn(*a, **k))
            while True:
                started = time.perf_counter(), _cpu()
                try:
                    item = next(it)
                except StopIteration:
                    self.add(stage, started)
                    return
                self.add(stage, started)
                yield item
        return timed


class RssWatch:
    """Peak RSS of this process plus the ffmpeg it runs, sampled together every 20 ms.

    ru_maxrss of children is no use here: Linux carries the forking parent's peak across exec."""

    def __init__(self):
        import threading

        from detector import video

        self.pids: list[int] = []
        self.peak_total = self.peak_child = 0
        real_popen = video.subprocess.Popen

        class Popen(real_popen):  # records the pids of the ffmpeg processes the scanner starts
            def __init__(inner, *a, **k):
                super().__init__(*a, **k)
                self.pids.append(inner.pid)

        video.subprocess = type(sys)("subprocess_watched")
        video.subprocess.__dict__.update(subprocess.__dict__)
        video.subprocess.Popen = Popen
        threading.Thread(target=self._poll, daemon=True).start()

    @staticmethod
    def _rss(pid: int | str) -> int:
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            return 0

    def _poll(self) -> None:
        while True:
            child = sum(self._rss(pid) for pid in self.pids[-2:])
            self.peak_child = max(self.peak_child, child)
            self.peak_total = max(self.peak_total, self._rss("self") + child)
            time.sleep(0.02)


def _worker(args: argparse.Namespace) -> int:
    import torch  # noqa: F401  — before tensorflow, as in the product

    from detector import pipeline
    from detector.runtime import resolve_device
    from detector.faces import FaceDetector
    from detector.model import Model

    clock = StageClock()
    watch = RssWatch()
    pipeline.probe = clock.wrap("probe", pipeline.probe)
    pipeline.sample_frames = clock.wrap_iter("decode", pipeline.sample_frames)
    pipeline.crop_face = clock.wrap("crop", pipeline.crop_face)
    pipeline.link_tracks = clock.wrap("aggregate", pipeline.link_tracks)
    pipeline.aggregate = clock.wrap("aggregate", pipeline.aggregate)
    pipeline._frames_detail = clock.wrap("aggregate", pipeline._frames_detail)

    started = time.perf_counter()
    device = resolve_device("cpu")
    model = Model(args.model, device)
    detector = FaceDetector(device)
    scanner = pipeline.Scanner(model, detector, pipeline.Settings(frames=args.frames))
    detector.detect = clock.wrap("detect", detector.detect)
    model.predict = clock.wrap("model", model.predict)
    setup_s = time.perf_counter() - started

    runs = []
    for i in range(args.runs + 1):  # the first is a warm-up (graph tracing, allocator growth)
        clock.now, clock.cpu = {}, {}
        cpu_started = _cpu()
        row, details = scanner.scan(args.clip)
        cpu = _cpu() - cpu_started
        if row.status not in ("ok", "no_face"):
            raise SystemExit(f"scan failed: {row.status}: {row.error}\n{details.get('traceback', '')}")
        stages = {s: clock.now.get(s, 0.0) for s in STAGES[:-1]}
        stages["other"] = max(0.0, row.seconds - sum(stages.values()))
        cpu_stages = {s: clock.cpu.get(s, 0.0) for s in STAGES[:-1]}
        cpu_stages["other"] = max(0.0, cpu - sum(cpu_stages.values()))
        runs.append({"seconds": row.seconds, "cpu_seconds": cpu, "stages": stages, "cpu_stages": cpu_stages, "n_frames": row.n_frames, "n_faces": row.n_faces,
                     "n_tracks": row.n_tracks, "p_fake": row.p_fake, "status": row.status})
        if i == 0:
            faces = [[f["box"] for f in frame["faces"]] for frame in details["frames"]]
            times = [frame["time"] for frame in details["frames"]]
        print(f"  {'warm-up' if i == 0 else f'run {i}'}: {row.seconds:.2f} s ({cpu:.2f} CPU s), "
              f"{row.n_faces} crops, load {os.getloadavg()[0]:.2f}", flush=True)

    measured = runs[1:] or runs
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    result = {
        "frames": args.frames, "runs": len(measured), "setup_seconds": setup_s,
        "median_seconds": statistics.median(r["seconds"] for r in measured),
        "min_seconds": min(r["seconds"] for r in measured),
        "max_seconds": max(r["seconds"] for r in measured),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in measured),
        "median_stages": {s: statistics.median(r["stages"][s] for r in measured) for s in STAGES},
        "median_cpu_stages": {s: statistics.median(r["cpu_stages"][s] for r in measured) for s in STAGES},
        "peak_rss_bytes": self_rss, "peak_rss_ffmpeg_bytes": watch.peak_child,
        "peak_rss_together_bytes": max(watch.peak_total, self_rss),
        "n_frames": measured[-1]["n_frames"], "n_faces": measured[-1]["n_faces"],
        "n_tracks": measured[-1]["n_tracks"], "p_fake": measured[-1]["p_fake"],
        "torch_threads": torch.get_num_threads(),
        "runs_detail": runs, "frame_times": times, "boxes": faces,
    }
    args.worker.write_text(json.dumps(result))
    return 0


def print_table(r: dict) -> None:
    gb = 1 << 30
    total = r["median_seconds"]
    print(f"\n{r['runs']} runs after a warm-up, {r['frames']} frames per clip: "
          f"{r['n_frames']} frames, {r['n_faces']} crops, {r['n_tracks']} track(s)")
    print(f"{'stage':<12}{'median s':>10}{'share':>8}{'CPU s':>8}")
    for stage, seconds in r["median_stages"].items():
        print(f"{stage:<12}{seconds:>10.3f}{seconds / total:>8.0%}{r['median_cpu_stages'][stage]:>8.2f}")
    print(f"{'per clip':<12}{total:>10.3f}{'':>8}{r['median_cpu_seconds']:>8.2f}   (wall min {r['min_seconds']:.3f}, "
          f"max {r['max_seconds']:.3f}; target ≤ {TARGET_SECONDS:.1f} s: {'met' if total <= TARGET_SECONDS else 'MISSED'})")
    rss, ff, both = r["peak_rss_bytes"] / gb, r["peak_rss_ffmpeg_bytes"] / gb, r["peak_rss_together_bytes"] / gb
    print(f"peak RSS    scanner {rss:.2f} GB, ffmpeg {ff:.2f} GB, both at once {both:.2f} GB "
          f"(target ≤ {TARGET_RSS_GB:.1f} GB: {'met' if both <= TARGET_RSS_GB else 'MISSED'})")
    print(f"model load + detector setup {r['setup_seconds']:.1f} s (once per batch, not per clip); "
          f"load average after {r['load_after']}")


if __name__ == "__main__":
    sys.exit(main())
