"""Speed and memory of the real scanner on a realistic clip: seconds per clip, per stage, peak RSS.

    python bench/benchmark.py [--model DIR] [--runs 5] [--frames 32] [--json OUT] [--clip VIDEO]
                              [--folder-clips 12] [--detect-every N] [--fast-decode] [--runtime R]
                              [--calls 5] [--memory 500] [--baseline TREE] [--original]
    python bench/benchmark.py --results-only [--rows 100000]

Three measurements in one fresh process, then two from the command line:
  single   the clip scanned alone, --runs times after a warm-up: seconds and CPU seconds per stage
  batch    the same clip --runs+1 times through scan_many, as a folder scan runs it (inputs decoded
           and searched for faces side by side while another is scored): the marginal cost per
           clip is the mean time between one result and the next from the second result on
           (target ≤ 1.0 s; results come in pairs, so single gaps alternate short and long), and
           the CPU seconds per clip over that span (how busy the batch keeps the cores)
  folder   --folder-clips 10-s 720p30 clips (three kinds, cached) scanned into a results folder
           with the report, exactly as the command line does: clips per minute from the first
           input to the last, model loading excluded (target ≥ 60)
  command  `python app.py` on the clip alone: what a shell loop calling the tool once per file pays
           per file, Python's start-up and the networks' loading included. First with an empty
           cache (it converts the networks for ONNX Runtime), then --calls more times: their
           median (target ≤ 3.0 s); then, with a new cache, what installing does (scripts/setup.sh
           loads the scanner once, which converts both networks) and the first call after it
           (target ≤ 6.0 s)
  memory   (--memory N) `python app.py` on a folder of one short clip, then of N links to it: the
           peak RSS of each process, which must not grow with the batch (target ≤ 1.0 GB)
--baseline TREE measures another tree's code (an older commit unpacked: `git archive COMMIT | tar
-x -C TREE`) the same way in the same run, right after this tree's, and prints its table beside.
--original then times the original product's pipeline, rebuilt (bench/original_pipeline.py: 20
frames, MTCNN in torch on whole frames, EfficientNetV2-B0 in TensorFlow), on the same clip, and
prints how many times as fast this tree is (target ≥ 10× for a clip in a batch).
--detect-every and --fast-decode are the scanner's options of the same names (faces followed between
full searches; frames no other frame needs left undecoded).

Without --clip it makes (once, cached in a temp folder) a 10-s 1080p30 H.264 clip of the
astronaut photo (face about 270 px) drifting over the moving testsrc2 pattern, encoded with
libx264's default preset. Without --model it uses models/default, else builds (once, cached) an
untrained EfficientNet-Lite0 (the default architecture) with the trainer's own builder: an untrained model runs exactly as
fast as a trained one.

The measured scans run in a fresh child process, so its peak RSS is the scanner's alone (not the
clip or model building); the ffmpeg decoder it starts is sampled beside it. Stages are timed
through the scanner's stage-timing hook (`detector.load(..., timer=...)`):
  probe      ffmpeg reading the container header
  decode     time the scanner waits for the next sampled frame (decoding runs on a reader
             thread, so decoding that overlaps detection is not counted here)
  detect     MTCNN (FaceDetector.detect, including its downscale)
  crop       crop_face
  model      Model.predict on all crops
  aggregate  track linking, the verdict and the per-frame details
  other      the rest of Scanner.scan (stacking crops, bookkeeping)

--results-only needs no model: it fills a results folder with synthetic rows and times appending
one more row to results.csv at 1,000 rows and at --rows rows (default 100,000), plus the
resume look-up, opening the folder and the end-of-batch compaction.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
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
TARGET_SECONDS, TARGET_BATCH_SECONDS, TARGET_RSS_GB, TARGET_CLIPS_PER_MINUTE = 3.0, 1.0, 1.0, 60
TARGET_COMMAND_SECONDS, TARGET_FIRST_CALL_SECONDS = 3.0, 6.0
TARGET_TIMES_ORIGINAL = 10  # a clip in a batch against the original pipeline rebuilt (issue 29)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="SavedModel folder (default: models/default, else an untrained Lite0)")
    parser.add_argument("--runs", type=int, default=5, help="measured scans after one warm-up (default 5, at least 2)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (default 32, the product's)")
    parser.add_argument("--clip", type=Path, help="scan this video instead of the generated 1080p clip")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--folder-clips", type=int, default=12, help="720p clips in the folder measurement (0: skip it)")
    parser.add_argument("--detect-every", type=int, default=8,
                        help="a full face search every N-th frame (default 8, the scanner's)")
    parser.add_argument("--runtime", default="auto", help="what scores the crops: auto, onnx or tensorflow")
    parser.add_argument("--fast-decode", action="store_true", help="skip decoding frames no other frame refers to")
    parser.add_argument("--calls", type=int, default=5, help="`python app.py` calls after the first (default 5)")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="also the peak RSS of `python app.py` on 1 and on N copies of a short clip (default: skip)")
    parser.add_argument("--baseline", type=Path, help="another tree (an older commit) to measure beside this one")
    parser.add_argument("--original", action="store_true", help="also time the original pipeline, rebuilt, on the clip")
    parser.add_argument("--results-only", action="store_true",
                        help="only time appending rows to a large results.csv (no model, no clip)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the large results folder (default 100000)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: measure, write JSON here
    args = parser.parse_args()
    if args.runs < 2 and not args.results_only:
        parser.error("--runs must be at least 2: the batch measure needs a gap between two results after the "
                     "first pair")
    sys.path.insert(0, str(ROOT))
    if args.worker:
        return _worker(args)
    if args.results_only:
        return results_scaling(args.rows)

    CACHE.mkdir(exist_ok=True)
    clip = args.clip.resolve() if args.clip else make_clip(CACHE / "face_1080p30_10s.mp4")
    model, note = pick_model(args.model)
    from detector.scan.video import ffmpeg_info  # the ffmpeg the scanner runs (pinned; DETECTOR_FFMPEG for another)

    ffmpeg = ffmpeg_info()
    print(f"clip:  {clip}\nmodel: {model} ({note})\nffmpeg: {ffmpeg.path} ({ffmpeg.version})\ncpu:   {cpu_name()}\nload:  {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min) on {os.cpu_count()} cores", flush=True)
    if args.folder_clips:
        make_folder(CACHE / "folder_720p", args.folder_clips)
    short = make_clip(CACHE / "face_720p30_2s.mp4", seconds=2, size="1280x720") if args.memory else None
    trees = {"this tree": ROOT, **({f"baseline {args.baseline}": args.baseline.resolve()} if args.baseline else {})}
    results = {}
    for name, tree in trees.items():
        print(f"\n== {name} ({tree})", flush=True)
        results[name] = measure(tree, clip, model, short, args)
        results[name].update(clip=str(clip), model=str(model), model_note=note, tree=str(tree),
                             ffmpeg={"path": ffmpeg.path, "version": ffmpeg.version},
                             load_after=[round(v, 2) for v in os.getloadavg()], cores=os.cpu_count(), cpu=cpu_name())
    original = original_pipeline(clip, args) if args.original else None
    for name, result in results.items():
        print(f"\n== {name}")
        print_table(result)
        if original:
            result["original_pipeline"] = original
            ratio = original["median_seconds"] / result["batch"]["marginal_seconds"]
            print(f"against the original pipeline ({original['median_seconds']:.2f} s a clip, {original['frames']} frames): "
                  f"a clip in a batch {ratio:.1f}× as fast (target ≥ {TARGET_TIMES_ORIGINAL}×: "
                  f"{'met' if ratio >= TARGET_TIMES_ORIGINAL else 'MISSED'}), alone "
                  f"{original['median_seconds'] / result['median_seconds']:.1f}×")
    if args.baseline:
        new, old = results.values()
        print(f"\nagainst the baseline: one clip in a batch {old['batch']['marginal_seconds'] / new['batch']['marginal_seconds']:.2f}× "
              f"as fast, `python app.py` {old['command_line']['median_seconds'] / new['command_line']['median_seconds']:.2f}× "
              f"(first call {old['command_line']['first_seconds'] / new['command_line']['first_seconds']:.2f}×)"
              + (f", 720p folder {new['folder']['clips_per_minute'] / old['folder']['clips_per_minute']:.2f}×"
                 if new["folder"] and old["folder"] else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


def measure(tree: Path, clip: Path, model: Path, short: Path | None, args: argparse.Namespace) -> dict:
    """Every measurement of one tree's code: its own benchmark worker (the same measurements in its
    version of this file), then its `python app.py`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(tree / "bench" / "benchmark.py"), "--worker", str(out), "--model", str(model),
               "--clip", str(clip), "--runs", str(args.runs), "--frames", str(args.frames), "--runtime", args.runtime,
               "--folder-clips", str(args.folder_clips), "--detect-every", str(args.detect_every)] \
            + (["--fast-decode"] if args.fast_decode else [])
        subprocess.run(cmd, check=True, cwd=tree)
        result = json.loads(out.read_text())
        result["command_line"] = command_line(tree, clip, model, Path(tmp), args)
        result["memory"] = memory(tree, short, model, Path(tmp), args) if short else None
    return result


def command_line(tree: Path, clip: Path, model: Path, tmp: Path, args: argparse.Namespace) -> dict:
    """Wall seconds of `python app.py` on the clip alone, start-up included: what a shell loop calling
    the tool once per file pays per file. The first call finds an empty cache (it converts the
    networks for ONNX Runtime); the median is of the --calls after it. Then, with a new cache, what
    installing does (scripts/setup.sh loads the scanner once, which converts them) and the first
    call after that."""
    seconds = []
    for _ in range(args.calls + 1):
        started = time.perf_counter()
        _app(tree, clip, tmp / "cli", model, tmp / "cache", args)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    install = [sys.executable, "-c", f"import detector; detector.load({str(model)!r}, runtime={args.runtime!r})"]
    subprocess.run(install, cwd=tree, env={**os.environ, "DETECTOR_CACHE": str(tmp / "installed")}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    install_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _app(tree, clip, tmp / "cli", model, tmp / "installed", args)
    after_install = time.perf_counter() - started
    print(f"  python app.py: first call {seconds[0]:.2f} s, then " + ", ".join(f"{s:.2f}" for s in seconds[1:]) + " s; "
          f"installing's conversions {install_seconds:.1f} s, then the first call {after_install:.2f} s", flush=True)
    return {"first_seconds": seconds[0], "seconds": seconds[1:], "median_seconds": statistics.median(seconds[1:]),
            "install_seconds": install_seconds, "first_after_install_seconds": after_install}


def original_pipeline(clip: Path, args: argparse.Namespace) -> dict:
    """bench/original_pipeline.py on the clip in a fresh process: its median seconds a clip."""
    print("\n== the original pipeline, rebuilt (bench/original_pipeline.py)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "original.json"
        subprocess.run([sys.executable, str(ROOT / "bench" / "original_pipeline.py"), "--clip", str(clip),
                        "--runs", str(args.runs), "--json", str(out)], check=True, cwd=ROOT)
        return json.loads(out.read_text())


def memory(tree: Path, clip: Path, model: Path, tmp: Path, args: argparse.Namespace) -> dict:
    """Peak RSS of `python app.py` (the process itself; ffmpeg is apart) on a folder holding the
    short clip once, then on one holding --memory links to it: a batch must not grow."""
    peaks = {}
    for count in (1, args.memory):
        folder = tmp / f"links_{count}"
        folder.mkdir()
        for i in range(count):
            (folder / f"clip_{i:04d}.mp4").symlink_to(clip)
        started = time.perf_counter()
        peaks[count] = _app(tree, folder, tmp / f"memory_{count}", model, tmp / "cache", args)
        print(f"  python app.py on {count} clip(s): peak RSS {peaks[count] / (1 << 30):.2f} GB, "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return {"clips": list(peaks), "peak_rss_bytes": list(peaks.values())}


def _app(tree: Path, source: Path, out: Path, model: Path, cache: Path, args: argparse.Namespace) -> int:
    """Run the tree's `python app.py` on source; the peak RSS of that process, in bytes."""
    cmd = [sys.executable, str(tree / "app.py"), "--input", str(source), "--output", str(out), "--model", str(model),
           "--frames", str(args.frames), "--runtime", args.runtime, "--detect-every", str(args.detect_every),
           "--overwrite", "--no-report", "-q"] + (["--fast-decode"] if args.fast_decode else [])
    proc = subprocess.Popen(cmd, cwd=tree, env={**os.environ, "DETECTOR_CACHE": str(cache)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss * 1024  # KiB on Linux


def make_clip(path: Path, seconds: int = 10, size: str = "1920x1080") -> Path:
    """10 s (by default) of 1080p30 H.264 (libx264 default preset): the astronaut photo, full frame
    height (face about 270 px at 1080p), drifting over the moving testsrc2 pattern."""
    if not path.exists():
        from tests.synthetic import face_clip

        partial = path.with_name("partial_" + path.name)
        face_clip(partial, seconds=seconds, size=size, fps=30, face=1.0, extra=("-an",), background="testsrc2")
        partial.rename(path)
    return path


FOLDER_KINDS = (("testsrc2", 1.0), ("testsrc2", 0.6), ("color=c=gray", 0.8))  # background, face height


def make_folder(folder: Path, count: int) -> Path:
    """`count` 10-s 720p30 H.264 clips, three kinds (busy or plain background, face 60–100% of the
    frame height), made once and cached."""
    from tests.synthetic import face_clip

    folder.mkdir(exist_ok=True)
    for i in range(count):
        path = folder / f"clip_{i:03d}.mp4"
        if not path.exists():
            background, face = FOLDER_KINDS[i % len(FOLDER_KINDS)]
            partial = folder / f"partial_{path.name}"
            face_clip(partial, seconds=10, size="1280x720", fps=30, face=face, extra=("-an",), background=background)
            partial.rename(path)
    return folder


def pick_model(given: Path | None) -> tuple[Path, str]:
    if given is not None:
        return given.resolve(), "given"
    default = ROOT / "models" / "default"
    if (default / "saved_model.pb").exists():
        return default, "models/default"
    built = CACHE / "untrained_lite0"
    if not (built / "saved_model.pb").exists():
        print("building an untrained EfficientNet-Lite0 (once) …", flush=True)
        subprocess.run([sys.executable, "-c", BUILD_MODEL, str(built), str(ROOT)], check=True)
    return built, "untrained EfficientNet-Lite0: same architecture, same speed as a trained one"


BUILD_MODEL = """
import sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[2])))
from detector.training.networks import build_detector  # the product's own network, untrained
build_detector().save(sys.argv[1])
"""


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class StageClock:
    """Wall and CPU seconds per stage for the current scan, filled through the scanner's
    stage-timing hook. CPU time is the whole process's during the stage: on a loaded machine it is
    the steadier number (wall time also counts waiting for cores other programs hold)."""

    def __init__(self):
        self.now: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        started = time.perf_counter(), _cpu()
        try:
            yield
        finally:
            self.now[name] = self.now.get(name, 0.0) + time.perf_counter() - started[0]
            self.cpu[name] = self.cpu.get(name, 0.0) + _cpu() - started[1]


class RssWatch:
    """Peak RSS of this process plus the ffmpeg it runs, sampled together every 20 ms.

    ru_maxrss of children is no use here: Linux carries the forking parent's peak across exec."""

    def __init__(self):
        import threading

        from detector.scan import video

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
    import detector

    clock = StageClock()
    watch = RssWatch()
    started = time.perf_counter()
    scanner = detector.load(args.model, "cpu", frames=args.frames, timer=clock.stage, runtime=args.runtime,
                            detect_every=args.detect_every, fast_decode=args.fast_decode)
    assert set(STAGES[:-1]) == set(detector.STAGES), "the table's stages are the scanner's, plus other"
    setup_s = time.perf_counter() - started

    runs = []
    for i in range(args.runs + 1):  # the first is a warm-up (graph tracing, allocator growth)
        clock.now, clock.cpu = {}, {}
        cpu_started = _cpu()
        row = scanner.scan(args.clip)
        cpu = _cpu() - cpu_started
        if row.status not in ("ok", "no_face"):
            raise SystemExit(f"scan failed: {row.status}: {row.error}\n{row.traceback}")
        stages = {s: clock.now.get(s, 0.0) for s in STAGES[:-1]}
        stages["other"] = max(0.0, row.seconds - sum(stages.values()))
        cpu_stages = {s: clock.cpu.get(s, 0.0) for s in STAGES[:-1]}
        cpu_stages["other"] = max(0.0, cpu - sum(cpu_stages.values()))
        runs.append({"seconds": row.seconds, "cpu_seconds": cpu, "stages": stages, "cpu_stages": cpu_stages, "n_frames": row.n_frames, "n_faces": row.n_faces,
                     "n_tracks": row.n_tracks, "p_fake": row.p_fake, "status": row.status})
        if i == 0:
            faces = [[list(f.box) for f in frame.faces] for frame in row.frames]
            times = [frame.time for frame in row.frames]
        print(f"  {'warm-up' if i == 0 else f'run {i}'}: {row.seconds:.2f} s ({cpu:.2f} CPU s), "
              f"{row.n_faces} crops, load {os.getloadavg()[0]:.2f}", flush=True)

    batch = _batch(scanner, args.clip, args.runs + 1)
    folder = _folder(scanner, CACHE / "folder_720p", args.folder_clips) if args.folder_clips else None
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
        "runtime": scanner.model.runtime, "mtcnn_runtime": scanner.detector.runtime, "detect_every": args.detect_every, "fast_decode": args.fast_decode,
        "batch": batch, "folder": folder,
        "runs_detail": runs, "frame_times": times, "boxes": faces,
    }
    args.worker.write_text(json.dumps(result))
    return 0


def _batch(scanner, clip: Path, count: int) -> dict:
    """The clip `count` times through scan_many: seconds between one result and the next, from
    the end of the first group of inputs worked on together (FACE_WORKERS), so that a batch whose
    results come in pairs is measured over whole pairs."""
    from detector.scan.scanner import FACE_WORKERS

    arrivals, cpu = [time.perf_counter()], [_cpu()]
    for result in scanner.scan_many([clip] * count):
        if result.status != "ok":
            raise SystemExit(f"batch scan failed: {result.status}: {result.error}")
        arrivals.append(time.perf_counter())
        cpu.append(_cpu())
    steady = arrivals[FACE_WORKERS:]  # arrivals[k] is the k-th result
    gaps = [b - a for a, b in zip(steady, steady[1:])]
    # CPU seconds per clip over the same span (ffmpeg's counted as each finishes): against the gap
    # times the cores, how busy the batch kept the machine
    cpu_per_clip = (cpu[-1] - cpu[FACE_WORKERS]) / len(gaps)
    print(f"  batch of {count}: result {FACE_WORKERS} after {steady[0] - arrivals[0]:.2f} s, then gaps "
          + ", ".join(f"{g:.2f}" for g in gaps) + f"; {cpu_per_clip:.2f} CPU s per clip", flush=True)
    return {"clips": count, "first_seconds": arrivals[1] - arrivals[0], "gaps": gaps,
            "marginal_seconds": statistics.mean(gaps), "median_gap_seconds": statistics.median(gaps),
            "cpu_seconds_per_clip": cpu_per_clip}


def _folder(scanner, folder: Path, count: int) -> dict:
    """The folder scanned into a fresh results folder, with the report, as the command line does."""
    import detector

    clips = sorted(folder.glob("clip_*.mp4"))[:count]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        statuses = [item.row.status for item in
                    detector.scan_batch(scanner, clips, detector.ResultsFolder(Path(tmp) / "results"), report=True)]
        seconds = time.perf_counter() - started
    if set(statuses) != {"ok"}:
        raise SystemExit(f"folder scan failed: {statuses}")
    print(f"  folder of {len(clips)} 720p clips: {seconds:.1f} s, {60 * len(clips) / seconds:.1f} clips/min", flush=True)
    return {"clips": len(clips), "seconds": seconds, "clips_per_minute": 60 * len(clips) / seconds}


def results_scaling(total: int, sample: int = 300) -> int:
    """Time appending one row to results.csv at 1,000 rows and at `total` rows (synthetic rows,
    no model): the cost must not grow with the folder."""
    from detector.files import atomic_write, csv_text
    from detector.output.results import COLUMNS, ResultsFolder, Row

    def row(i: int) -> Row:
        return Row(path=f"/data/videos/batch_{i // 1000:04d}/clip_{i:07d}.mp4", status="ok", label="REAL",
                   p_fake=0.25, n_frames=32, n_faces=32, n_tracks=1, seconds=2.4, size=1_000_000 + i,
                   mtime_ns=1_700_000_000_000_000_000 + i, settings="model=0123456789ab;frames=32;aggregate=track-max;"
                   "threshold=0.5", details=f"details/clip_{i:07d}.mp4.{i:08x}.json")

    print(f"results.csv scaling: median of {sample} appended rows (row + fsync), on {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'rows':>9}{'append ms/row':>15}{'look-up µs':>12}{'open s':>8}{'compact s':>11}")
    figures = {}
    for size in (1000, total):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            atomic_write(folder / "results.csv", csv_text([COLUMNS, *(row(i).to_csv() for i in range(size))]))
            started = time.perf_counter()
            results = ResultsFolder(folder)
            opened = time.perf_counter() - started
            started = time.perf_counter()
            for i in range(0, size, max(1, size // 1000)):
                results.done(row(i).path, row(i).size, row(i).mtime_ns, row(i).settings)
            lookup = (time.perf_counter() - started) / len(range(0, size, max(1, size // 1000)))
            times = []
            for i in range(size, size + sample):
                started = time.perf_counter()
                results.write(row(i), None)
                times.append(time.perf_counter() - started)
            results.write(row(0), None)  # a rescan: the batch's end then compacts
            started = time.perf_counter()
            results.compact()
            compact = time.perf_counter() - started
        figures[size] = statistics.median(times)
        print(f"{size:>9,}{figures[size] * 1e3:>15.3f}{lookup * 1e6:>12.1f}{opened:>8.2f}{compact:>11.2f}")
    print(f"append at {total:,} rows / at 1,000 rows: {figures[total] / figures[1000]:.2f}×")
    return 0


def cpu_name() -> str:
    """The processor's model name: the same code runs at very different speeds on different
    machines (docs/speed.md), so every figure says which one made it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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
    b = r["batch"]
    print(f"in a batch  {b['marginal_seconds']:.3f} s per clip (mean gap between results, {len(b['gaps'])} gaps; "
          f"median {b['median_gap_seconds']:.3f}; target ≤ {TARGET_BATCH_SECONDS:.1f} s: "
          f"{'met' if b['marginal_seconds'] <= TARGET_BATCH_SECONDS else 'MISSED'}), "
          f"{b['cpu_seconds_per_clip']:.2f} CPU s per clip "
          f"({b['cpu_seconds_per_clip'] / (b['marginal_seconds'] * os.cpu_count()):.0%} of the cores)")
    if f := r["folder"]:
        print(f"720p folder {f['clips_per_minute']:.1f} clips/min ({f['clips']} clips in {f['seconds']:.1f} s, with the "
              f"report; target ≥ {TARGET_CLIPS_PER_MINUTE}: {'met' if f['clips_per_minute'] >= TARGET_CLIPS_PER_MINUTE else 'MISSED'})")
    print(f"cpu         {r['cpu']} ({r['cores']} cores)")
    print(f"runtime {r['runtime']} (MTCNN in {r.get('mtcnn_runtime', 'torch')}), --detect-every {r['detect_every']}"
          f"{', --fast-decode' if r['fast_decode'] else ''}")
    rss, ff, both = r["peak_rss_bytes"] / gb, r["peak_rss_ffmpeg_bytes"] / gb, r["peak_rss_together_bytes"] / gb
    print(f"peak RSS    scanner {rss:.2f} GB, ffmpeg {ff:.2f} GB, both at once {both:.2f} GB "
          f"(target ≤ {TARGET_RSS_GB:.1f} GB: {'met' if both <= TARGET_RSS_GB else 'MISSED'})")
    print(f"model load + detector setup {r['setup_seconds']:.1f} s (once per batch, not per clip); "
          f"load average after {r['load_after']}")
    c = r["command_line"]
    print(f"python app.py on the clip alone (start-up included): median {c['median_seconds']:.2f} s of {len(c['seconds'])} "
          f"calls (target ≤ {TARGET_COMMAND_SECONDS:.1f} s: {'met' if c['median_seconds'] <= TARGET_COMMAND_SECONDS else 'MISSED'}); "
          f"first call, empty cache, {c['first_seconds']:.2f} s; first call after installing's conversions "
          f"({c['install_seconds']:.1f} s) {c['first_after_install_seconds']:.2f} s (target ≤ {TARGET_FIRST_CALL_SECONDS:.1f} s: "
          f"{'met' if c['first_after_install_seconds'] <= TARGET_FIRST_CALL_SECONDS else 'MISSED'})")
    if m := r["memory"]:
        print("python app.py peak RSS: " + ", ".join(f"{n} clip(s) {b / gb:.2f} GB" for n, b in zip(m["clips"], m["peak_rss_bytes"]))
              + f" (target ≤ {TARGET_RSS_GB:.1f} GB: {'met' if max(m['peak_rss_bytes']) / gb <= TARGET_RSS_GB else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
