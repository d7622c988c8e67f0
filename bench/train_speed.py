"""Training speed: crops per second through the trainer's own training step, and through its loader.

    python bench/train_speed.py [--steps 30] [--batch-size 16] [--arch efficientnet-lite0] [--json OUT]
    python bench/train_speed.py --crops work/crops_clips --crops work/crops_lfw [--batches 40] --no-network

The network: the compiled step (forward, loss, backward, update of the whole network, batch-norm
adapting) on random 224×224 batches after a warm-up step, so it measures the network, not the data.

The loader (`--crops`): the trainer's CropSampler making batches as a run does (pairs of a real and
a fake, self-blends made from source regions, augmentation, H.264 re-encoding), on one thread, as
`prefetch` runs it beside the network; it keeps the network busy while its crops/s is the higher.
Both also report CPU time a crop (all threads, and ffmpeg's): on a shared machine wall-clock rates fall with
the load, and the CPU each part takes is what decides how they share the cores.
Also timed apart: one self-blend (region read, blend, cut to the crop), and the face mesh of one
region as the crop builder finds it; and, from the crop indexes, how many real faces per source
have no mesh (they train as reals, never as self-blend sources).
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
    step(x, y)  # trace and warm up
    times = []
    cpu = _cpu_seconds()
    for _ in range(steps):
        started = time.perf_counter()
        float(step(x, y)[0])  # wait for the result
        times.append(time.perf_counter() - started)
    cpu_ms = 1000 * (_cpu_seconds() - cpu) / (steps * batch_size)
    median = statistics.median(times)
    return {"arch": arch, "parameters": model.count_params(), "median_step_s": round(median, 4),
            "crops_per_second": round(batch_size / median, 1), "cpu_ms_per_crop": round(cpu_ms, 1),
            "steps": steps, "batch_size": batch_size}


def measure_loader(folders: list[Path], batches: int, batch_size: int, sbi: str) -> dict:
    import numpy as np

    from detector.data.crops import mesh_counts, read_index
    from detector.data.landmarks import FaceMesh, five_points
    from detector.training.selfblend import crop_blend, self_blend
    from detector.training.train import CropSampler, TrainConfig

    records = [r for folder in folders for r in read_index(folder)]
    sampler = CropSampler(records, TrainConfig(batch_size=batch_size, sbi=sbi), np.random.default_rng(0))
    for record in records:  # a run's crop cache is warm after its first epoch
        sampler._image(record)
        if record.mesh is not None:
            sampler._mesh(record)
    sampler.batch()
    started, cpu = time.perf_counter(), _cpu_seconds()
    for _ in range(batches):
        sampler.batch()
    loader = batches * batch_size / (time.perf_counter() - started)
    loader_cpu_ms = 1000 * (_cpu_seconds() - cpu) / (batches * batch_size)

    blendable = [r for pool in sampler.blendable.values() for r in pool]
    picks = [blendable[i] for i in np.random.default_rng(1).integers(len(blendable), size=min(100, 4 * len(blendable)))]
    rng = np.random.default_rng(2)
    started = time.perf_counter()
    for record in picks:
        crop_blend(self_blend(record.region_image(), sampler._mesh(record), rng), record.region_box,
                   sampler._image(record).shape[0])
    blend_ms = 1000 * (time.perf_counter() - started) / len(picks)

    # the mesh found on the regions again, each turned by its own mesh's eyes (the builder uses MTCNN's)
    mesh = FaceMesh()
    faces = [(r.region_image(), r.region_box, five_points(sampler._mesh(r))) for r in picks[:50]]
    started = time.perf_counter()
    for region, box, five in faces:
        mesh(region, box, five)
    mesh_ms = 1000 * (time.perf_counter() - started) / len(faces)
    sides = [region.shape[0] for region, _, _ in faces]
    return {"loader_crops_per_second": round(loader, 1), "loader_cpu_ms_per_crop": round(loader_cpu_ms, 1), "batches": batches, "batch_size": batch_size, "sbi": sbi,
            "self_blend_ms": round(blend_ms, 1), "face_mesh_ms": round(mesh_ms, 1),
            "median_region_side": int(np.median(sides)),
            "faces_without_mesh": {d: {"real_crops": n, "with_region": k, "with_mesh": m,
                                       "failure_rate": round((k - m) / k, 4) if k else None}
                                   for d, (n, k, m) in mesh_counts(records).items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable; default: all)")
    parser.add_argument("--no-network", action="store_true", help="time only the loader")
    parser.add_argument("--crops", type=Path, action="append", default=[],
                        help="crop dataset folders (deepfake-detector crops) to time the loader on (repeatable)")
    parser.add_argument("--batches", type=int, default=40, help="loader batches to time")
    parser.add_argument("--sbi", default="mix", choices=("mix", "only"), help="the loader's --sbi (default mix)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from detector.training.networks import ARCHITECTURES

    report = {}
    if not args.no_network:
        report["network"] = [measure(arch, args.steps, args.batch_size) for arch in args.arch or ARCHITECTURES]
        for r in report["network"]:
            print(f"{r['arch']:<20} {r['parameters'] / 1e6:5.2f} M parameters  {r['crops_per_second']:6.1f} crops/s "
                  f"(median step {r['median_step_s']:.3f} s, batch {r['batch_size']}; {r['cpu_ms_per_crop']:.0f} CPU ms a crop)")
    if args.crops:
        r = report["loader"] = measure_loader(args.crops, args.batches, args.batch_size, args.sbi)
        print(f"loader (--sbi {r['sbi']}, one thread): {r['loader_crops_per_second']:.1f} crops/s "
              f"({r['loader_cpu_ms_per_crop']:.0f} CPU ms a crop); one self-blend "
              f"{r['self_blend_ms']:.1f} ms, one face mesh {r['face_mesh_ms']:.1f} ms "
              f"(median region {r['median_region_side']} px)")
        for dataset, c in r["faces_without_mesh"].items():
            print(f"  {dataset}: {c['with_region']} real faces with a region, {c['with_region'] - c['with_mesh']} "
                  f"without a face mesh ({100 * (c['failure_rate'] or 0):.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
