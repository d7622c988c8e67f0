"""Training speed of each architecture: crops per second through the trainer's own training step.

    python bench/train_speed.py [--steps 30] [--batch-size 16] [--json OUT]

Times the compiled step (forward, loss, backward, update of the whole network, batch-norm
adapting) on random 224×224 batches after a warm-up step, so it measures the network, not the
data pipeline; the crops/s a real run reaches, with augmentation and self-blending on a thread
beside it, is in each run's log.csv (`crops_per_second`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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
    for _ in range(steps):
        started = time.perf_counter()
        float(step(x, y)[0])  # wait for the result
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"arch": arch, "parameters": model.count_params(), "median_step_s": round(median, 4),
            "crops_per_second": round(batch_size / median, 1), "steps": steps, "batch_size": batch_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from detector.training.networks import ARCHITECTURES

    results = [measure(arch, args.steps, args.batch_size) for arch in ARCHITECTURES]
    for r in results:
        print(f"{r['arch']:<20} {r['parameters'] / 1e6:5.2f} M parameters  {r['crops_per_second']:6.1f} crops/s "
              f"(median step {r['median_step_s']:.3f} s, batch {r['batch_size']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
