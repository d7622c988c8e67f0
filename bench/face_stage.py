"""The face stage alone, on the CPU and (where there is one) the GPU: does following faces give a
full search's boxes, what does each way cost per frame, and is MTCNN itself unchanged by the
scanner's numpy cascade and ONNX Runtime networks?

    python bench/face_stage.py [--frames 32]

Three synthetic 1080p clips of the astronaut photo (300 px) on grey: one face drifting, two faces
crossing, one face jumping across the frame half-way. For each device:
  stock       the scanner's MTCNN against facenet-pytorch's as shipped, on one frame: its numpy cascade
              with the torch networks identical to facenet-pytorch's given the same frame tensor?,
              max |Δbox| of the networks the scanner runs (ONNX Runtime on the CPU), and ms per full
              search of the scanner's and of facenet-pytorch's
  every 1/8   FaceTracker with a full search on every frame, and on every 8th (following faces in
              between): ms per frame, full searches, and max |Δbox| between the two (target: 0)
  batched     FaceDetector.detect on 8 frames per call, as the scanner runs full searches
Needs torch, facenet-pytorch, OpenCV and scikit-image only (no TensorFlow, no ffmpeg).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from detector.scan import mtcnn  # noqa: E402
from detector.scan.faces import FaceDetector  # noqa: E402
from detector.scan.tracking import FaceTracker  # noqa: E402

SIDE = 300


def frame(face: np.ndarray, *corners: tuple[int, int]) -> np.ndarray:
    out = np.full((1080, 1920, 3), 128, np.uint8)
    for i, (x, y) in enumerate(corners):
        out[y:y + SIDE, x:x + SIDE] = face if i % 2 == 0 else face[:, ::-1]
    return out


def clock(device: str, work) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    work()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def max_gap(a: list, b: list) -> float:
    return max((float(np.abs(np.array(p.box) - np.array(q.box)).max())
                for x, y in zip(a, b) if len(x) == len(y) for p, q in zip(x, y)), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    args = parser.parse_args()
    import skimage.data
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils.detect_face import detect_face

    face = cv2.resize(skimage.data.astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    n = args.frames
    clips = {"drifting": [frame(face, (80 + 24 * i, 200 + 4 * i)) for i in range(n)],
             "crossing": [frame(face, (40 + 38 * i, 200), (1540 - 38 * i, 220)) for i in range(n)],
             "jumping": [frame(face, (80, 200))] * (n // 2) + [frame(face, (1300, 600))] * (n - n // 2)}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; devices: {', '.join(devices)}"
          + (f" ({torch.cuda.get_device_name(0)})" if "cuda" in devices else ""))
    for device in devices:
        detector = FaceDetector(device)
        stock = MTCNN(keep_all=True, min_face_size=detector.min_face, device=torch.device(device))
        small = cv2.resize(clips["crossing"][n // 3], (640, 360), interpolation=cv2.INTER_AREA)[None]
        (ours, _), = mtcnn.cascade(small, detector.min_face, detector.nets)
        (glue, _), = mtcnn.cascade(small, detector.min_face, mtcnn.torch_nets(device))
        planes = torch.from_numpy(np.ascontiguousarray(small.transpose(0, 3, 1, 2), np.float32)).to(device)
        with torch.no_grad():  # facenet-pytorch's cascade given the frame tensor, plane by plane
            (same_input,), _ = detect_face(planes.permute(0, 2, 3, 1), detector.min_face, stock.pnet, stock.rnet,
                                           stock.onet, stock.thresholds, stock.factor, stock.device)
        timed = {name: clock(device, lambda: [search() for _ in range(10)]) / 10 * 1000 for name, search in
                 (("scanner", lambda: detector.detect([clips["crossing"][n // 3]])),
                  ("stock", lambda: stock.detect(small)))}
        theirs = np.asarray(same_input, np.float32)
        print(f"\n{device}: the scanner's MTCNN against facenet-pytorch's: numpy cascade with torch's networks "
              f"identical: {np.array_equal(glue, theirs)}; networks in {detector.runtime}: max |Δbox| "
              f"{np.abs(ours[:, :4] - theirs[:, :4]).max() if ours.shape == theirs.shape else 'other faces'} px; "
              f"a full search {timed['scanner']:.1f} ms (scanner's, downscaling included) against "
              f"{timed['stock']:.1f} ms (stock); follows faces: {detector.follows_faces}")
        for name, frames in clips.items():
            found = {}
            for every in (1, 8):
                [FaceTracker(detector, every)(f, i) for i, f in enumerate(frames[:4])]  # warm-up
                tracker = FaceTracker(detector, every)
                seconds = clock(device, lambda: found.setdefault(every, [tracker(f, i) for i, f in enumerate(frames)]))
                print(f"  {name:9s} every {every}: {seconds / n * 1000:5.1f} ms/frame, {tracker.full_passes:2d} full searches")
            same = all(len(x) == len(y) for x, y in zip(found[1], found[8]))
            print(f"  {name:9s} followed vs full: same face counts {same}, max |Δbox| {max_gap(found[1], found[8]):.2g} px")
        frames = clips["drifting"]
        detector.detect(frames[:8])
        seconds = clock(device, lambda: [detector.detect(frames[i:i + 8], i) for i in range(0, n, 8)])
        print(f"  batched full searches, 8 frames a call: {seconds / n * 1000:.1f} ms/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
