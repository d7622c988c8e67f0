"""Training speed: crops per second through the trainer's step, its loader, and both as a run has them.

    python bench/train_speed.py [--steps 30] [--batch-size 16] [--arch efficientnet-lite0] [--json OUT]
    python bench/train_speed.py --crops work/crops_clips --crops work/crops_lfw [--batches 40] --no-network
    python bench/train_speed.py --crops work/crops_clips --crops work/crops_pool --crops work/crops_dfdc \
        --crops work/crops_lfw --end-to-end [--sbi heads] [--workers 1] [--steps 200]

The network: the compiled step (forward, loss, backward, update of the whole network, batch-norm
adapting) on random 224×224 batches after a warm-up step, so it measures the network, not the data.

The loader (`--crops`): the trainer's CropSampler making batches as a run does (pairs of a real and
a fake, self-blends made from source regions, augmentation, H.264 re-encoding) in this process,
its cache of decoded crops, regions and meshes warm, and apart from that what each part costs a
crop: reading a crop, region and mesh from disk (the first epoch's cost), one self-blend, the
augmentation and the H.264 round trip.

End to end (`--end-to-end`): the trainer's own step fed by its own batch workers (`--workers`), on
those crops, from step 0, as `deepfake-detector train` runs them; after `--warm-steps` it reports
crops/s and the CPU time a crop takes in the training process and in the workers. The workers
start with a cold cache, as a run does: a run's first epoch is slower than the rest (log.csv).
Wall-clock rates fall with any other load on the machine: run it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu_seconds() -> float:
    """CPU time of this process, all its threads, and its finished children (the H.264 ffmpegs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure(arch: str, steps: int, batch_size: int) -> dict:
    import numpy as np

    from detector.runtime import tf
    from detector.training.train import TrainConfig, initial_model, make_optimizer, set_phase, step_function

    config = TrainConfig(arch=arch, batch_size=batch_size)
    model = initial_model(None, config)
    set_phase(model, "all", config)
    step = step_function(model, make_optimizer(config, 1e-4), config)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch_size, 224, 224, 3), dtype=np.float32))
    y = tf.constant(np.arange(batch_size) % 2, tf.int32)
    head, seed = tf.zeros(batch_size, tf.int32), tf.constant([0, 0], tf.int64)
    step(x, y, head, seed)  # trace and warm up
    times = []
    cpu = _cpu_seconds()
    for _ in range(steps):
        started = time.perf_counter()
        float(step(x, y, head, seed)[0])  # wait for the result
        times.append(time.perf_counter() - started)
    cpu_ms = 1000 * (_cpu_seconds() - cpu) / (steps * batch_size)
    median = statistics.median(times)
    return {"arch": arch, "parameters": model.count_params(), "median_step_s": round(median, 4),
            "crops_per_second": round(batch_size / median, 1), "cpu_ms_per_crop": round(cpu_ms, 1),
            "steps": steps, "batch_size": batch_size}


def _timed(function, items) -> float:
    """CPU milliseconds per item of function(item) over items."""
    cpu = _cpu_seconds()
    for item in items:
        function(item)
    return 1000 * (_cpu_seconds() - cpu) / max(1, len(items))


def measure_loader(folders: list[Path], batches: int, batch_size: int, sbi: str) -> dict:
    import numpy as np

    from detector.data.crops import mesh_counts, read_index
    from detector.data.landmarks import FaceMesh, five_points
    from detector.training.augment import augment, h264_roundtrip
    from detector.training.batches import CropSampler
    from detector.training.selfblend import crop_blend, self_blend

    records = [r for folder in folders for r in read_index(folder)]
    sampler = CropSampler(records, batch_size, sbi, seed=0, h264_p=0.1, labelled_share=0.25)
    blendable = [r for pool in sampler.blendable.values() for r in pool]
    picks = [blendable[i] for i in np.random.default_rng(1).integers(len(blendable), size=min(100, 4 * len(blendable)))]
    parts = {"read crop, region and mesh (first epoch only)": _timed(
        lambda r: (r.image(), r.region_image(), np.load(r.mesh)), picks)}
    for record in records:  # a run's cache is warm after its first epoch
        sampler.image(record)
        if record.mesh is not None:
            sampler.region(record), sampler.mesh(record)
    rng = np.random.default_rng(2)
    parts["self-blend and cut, a pair"] = _timed(lambda r: crop_blend(
        self_blend(sampler.region(r), sampler.mesh(r), rng), r.region_box, sampler.image(r).shape[0]), picks) / 2
    crops = [sampler.image(r) for r in picks]
    parts["augmentation"] = _timed(lambda c: augment(c, rng), crops)
    stack = np.stack(crops[:16])
    parts["H.264 round trip, when drawn"] = _timed(lambda _: h264_roundtrip(stack, 30), range(5)) / len(stack)
    sampler.batch(0)
    started, cpu = time.perf_counter(), _cpu_seconds()
    for step in range(1, batches + 1):
        sampler.batch(step)
    loader = batches * batch_size / (time.perf_counter() - started)
    loader_cpu_ms = 1000 * (_cpu_seconds() - cpu) / (batches * batch_size)

    # the mesh found on the regions again, each turned by its own mesh's eyes (the builder uses MTCNN's)
    mesh = FaceMesh()
    faces = [(sampler.region(r), r.region_box, five_points(sampler.mesh(r))) for r in picks[:50]]
    started = time.perf_counter()
    for region, box, five in faces:
        mesh(region, box, five)
    mesh_ms = 1000 * (time.perf_counter() - started) / len(faces)
    sides = [region.shape[0] for region, _, _ in faces]
    cached = sum(array.nbytes for array in sampler._cache.values())
    return {"loader_crops_per_second": round(loader, 1), "loader_cpu_ms_per_crop": round(loader_cpu_ms, 1),
            "batches": batches, "batch_size": batch_size, "sbi": sbi,
            "parts_cpu_ms": {name: round(ms, 2) for name, ms in parts.items()},
            "cache_gb": round(cached / 2**30, 2), "face_mesh_ms": round(mesh_ms, 1),
            "median_region_side": int(np.median(sides)),
            "faces_without_mesh": {d: {"real_crops": n, "with_region": k, "with_mesh": m,
                                       "failure_rate": round((k - m) / k, 4) if k else None}
                                   for d, (n, k, m) in mesh_counts(records).items()}}


def _children_cpu_seconds() -> float:
    """CPU time of this process's live child processes (the batch workers), from /proc."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def measure_end_to_end(folders: list[Path], steps: int, warm_steps: int, batch_size: int, sbi: str,
                       workers: int) -> dict:
    from detector.data.crops import read_index
    from detector.runtime import tf
    from detector.training.networks import CONTRACT
    from detector.training.train import (TrainConfig, batches, initial_model, make_optimizer, sampler_kwargs,
                                         set_phase, step_function)

    config = TrainConfig(batch_size=batch_size, sbi=sbi, bn="frozen", h264_p=0.1)
    records = [r for folder in folders for r in read_index(folder)]
    model = initial_model(None, config)
    set_phase(model, "all", config)
    step = step_function(model, make_optimizer(config, 1e-4), config)
    stream = batches(sampler_kwargs(records, config), 0, warm_steps + steps, workers)
    for i in range(warm_steps + steps):
        if i == warm_steps:
            started, cpu, child_cpu = time.perf_counter(), _cpu_seconds(), _children_cpu_seconds()
        batch = next(stream)
        float(step(tf.constant(CONTRACT.to_input(batch.x)), tf.constant(batch.y), tf.constant(batch.head),
                   tf.constant([0, i], tf.int64))[0])
    seconds = time.perf_counter() - started
    crops = steps * batch_size
    result = {"crops_per_second": round(crops / seconds, 1), "workers": workers, "sbi": sbi, "steps": steps,
              "warm_steps": warm_steps, "batch_size": batch_size,
              "training_process_cpu_ms_per_crop": round(1000 * (_cpu_seconds() - cpu) / crops, 1),
              "worker_cpu_ms_per_crop": round(1000 * (_children_cpu_seconds() - child_cpu) / crops, 1),
              "cores": os.cpu_count()}
    stream.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable; default: all)")
    parser.add_argument("--no-network", action="store_true", help="time only the loader")
    parser.add_argument("--crops", type=Path, action="append", default=[],
                        help="crop dataset folders (deepfake-detector crops) to time the loader on (repeatable)")
    parser.add_argument("--batches", type=int, default=40, help="loader batches to time")
    parser.add_argument("--sbi", default="heads", choices=("mix", "only", "heads"),
                        help="the loader's --sbi (default heads, as the long run)")
    parser.add_argument("--end-to-end", action="store_true", help="the step fed by the batch workers, as a run")
    parser.add_argument("--workers", type=int, default=1, help="batch worker processes, end to end (default 1)")
    parser.add_argument("--warm-steps", type=int, default=20, help="end-to-end steps before timing (default 20)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from detector.training.networks import ARCHITECTURES

    report = {}
    if args.end_to_end:
        if not args.crops:
            parser.error("--end-to-end needs --crops")
        r = report["end_to_end"] = measure_end_to_end(args.crops, args.steps, args.warm_steps, args.batch_size,
                                                      args.sbi, args.workers)
        limit = "the cores" if r["training_process_cpu_ms_per_crop"] + r["worker_cpu_ms_per_crop"] > \
            0.9 * 1000 * r["cores"] / r["crops_per_second"] else "neither part alone: the cores idle"
        print(f"end to end (--sbi {r['sbi']}, {r['workers']} worker(s)): {r['crops_per_second']:.1f} crops/s; "
              f"a crop takes {r['training_process_cpu_ms_per_crop']:.0f} CPU ms in the training process and "
              f"{r['worker_cpu_ms_per_crop']:.0f} in the workers, of {1000 * r['cores'] / r['crops_per_second']:.0f} "
              f"core-ms available at that rate (limit: {limit})")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")
        return 0
    if not args.no_network:
        report["network"] = [measure(arch, args.steps, args.batch_size) for arch in args.arch or ARCHITECTURES]
        for r in report["network"]:
            print(f"{r['arch']:<20} {r['parameters'] / 1e6:5.2f} M parameters  {r['crops_per_second']:6.1f} crops/s "
                  f"(median step {r['median_step_s']:.3f} s, batch {r['batch_size']}; {r['cpu_ms_per_crop']:.0f} CPU ms a crop)")
    if args.crops:
        r = report["loader"] = measure_loader(args.crops, args.batches, args.batch_size, args.sbi)
        print(f"loader (--sbi {r['sbi']}, one process, cache warm: {r['cache_gb']:.1f} GB): "
              f"{r['loader_crops_per_second']:.1f} crops/s ({r['loader_cpu_ms_per_crop']:.0f} CPU ms a crop); "
              f"one face mesh {r['face_mesh_ms']:.1f} ms (median region {r['median_region_side']} px)")
        for name, ms in r["parts_cpu_ms"].items():
            print(f"  {name}: {ms:.1f} CPU ms a crop")
        for dataset, c in r["faces_without_mesh"].items():
            print(f"  {dataset}: {c['with_region']} real faces with a region, {c['with_region'] - c['with_mesh']} "
                  f"without a face mesh ({100 * (c['failure_rate'] or 0):.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
