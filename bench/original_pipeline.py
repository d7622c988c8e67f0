"""The original product's pipeline, rebuilt from its design, to time this scanner against it.

    python bench/original_pipeline.py --clip VIDEO [--runs 5] [--frames 20] [--json OUT]

What the product was before this project (README's pipeline, with each library's plain use):
ffmpeg, through ffmpeg-python, decodes the clip and passes the sampled frames (evenly spaced, 20
by default) at full resolution as RGB; facenet-pytorch's MTCNN (torch, on the CPU) searches each
whole frame for faces in one batch call and crops every face it finds to 224×224 with a margin;
an EfficientNetV2-B0 SavedModel (2-class softmax, index 1 = fake, [0,1] input), run through its
`serving_default` signature in TensorFlow, scores the crops; the clip's p_fake is their mean.

The original weights are not here, so the model is an untrained EfficientNetV2-B0 built by
tf_keras (made once, cached): an untrained network costs exactly what a trained one does, and only
time is measured here, never a verdict. It prints the seconds per clip (a warm-up scan, then the
median of --runs), for `bench/benchmark.py --original` to set beside this scanner's figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch  # noqa: F401  — torch before TensorFlow (importing TensorFlow first crashes facenet-pytorch)
import facenet_pytorch
import ffmpeg
import numpy as np

CACHE = Path(tempfile.gettempdir()) / "detector-bench"
MODEL = CACHE / "efficientnetv2_b0_untrained"
SIZE = 224


def build_model(path: Path = MODEL) -> Path:
    """The original model's architecture and contract, untrained, saved the original way (tf_keras)."""
    if not (path / "saved_model.pb").exists():
        import tf_keras

        backbone = tf_keras.applications.EfficientNetV2B0(
            include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg",
            include_preprocessing=False)  # the original took [0,1] pixels
        outputs = tf_keras.layers.Dense(2, activation="softmax")(backbone.output)
        tf_keras.Model(backbone.input, outputs).save(str(path))
    return path


class OriginalPipeline:
    def __init__(self, model: Path, frames: int = 20):
        import tensorflow as tf

        self.tf = tf
        self.frames = frames
        self.mtcnn = facenet_pytorch.MTCNN(image_size=SIZE, keep_all=True, post_process=False, device="cpu")
        self.serve = tf.saved_model.load(str(model)).signatures["serving_default"]

    def scan(self, path: Path) -> float:
        """p_fake of one clip: the mean fake probability of every face crop in the sampled frames."""
        stream = next(s for s in ffmpeg.probe(str(path))["streams"] if s["codec_type"] == "video")
        width, height, count = int(stream["width"]), int(stream["height"]), int(stream["nb_frames"])
        wanted = np.linspace(0, count - 1, self.frames).round().astype(int)
        chosen = "+".join(f"eq(n,{i})" for i in wanted)  # ffmpeg-python escapes the commas
        raw, _ = (ffmpeg.input(str(path)).filter("select", chosen)
                  .output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync=0)
                  .run(capture_stdout=True, quiet=True))
        frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
        faces = [f for f in self.mtcnn(list(frames)) if f is not None]  # one (n, 3, 224, 224) tensor a frame
        if not faces:
            return float("nan")
        crops = torch.cat(faces).permute(0, 2, 3, 1).numpy() / 255.0
        scores = next(iter(self.serve(self.tf.constant(crops, self.tf.float32)).values())).numpy()
        return float(scores[:, 1].mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5, help="timed scans after one warm-up (default 5)")
    parser.add_argument("--frames", type=int, default=20, help="frames sampled a clip (default 20, the original's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    pipeline = OriginalPipeline(build_model(), args.frames)
    pipeline.scan(args.clip)  # warm-up: graph tracing, first allocations
    seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        pipeline.scan(args.clip)
        seconds.append(time.perf_counter() - started)
    result = {"frames": args.frames, "seconds": seconds, "median_seconds": statistics.median(seconds)}
    print(f"original pipeline: {result['median_seconds']:.2f} s a clip (median of {args.runs}: "
          + ", ".join(f"{s:.2f}" for s in seconds) + ")", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
