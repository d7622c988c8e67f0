"""MTCNN, facenet-pytorch's face detector (its weights, its cascade, its boxes), without torch on
the scan path.

The cascade's glue (image pyramid, PNet's candidate boxes, non-maximum suppression, box
regression, squaring, padding, the crops RNet and ONet see) is facenet-pytorch's `detect_face`
redone in numpy, step for step and in the same float32 arithmetic: given the same network
outputs it gives the same boxes, bit for bit (tests/test_mtcnn.py). The three networks run in ONNX
Runtime, converted from facenet-pytorch's own weights once, cached and checked against torch by
onnx.checked_session, as the classifier is; where ONNX Runtime is missing or disagrees, and on a
GPU, they run in torch (imported only then).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.scan import onnx
from detector.scan.model import ModelError

log = logging.getLogger("detector")

THRESHOLDS = (0.6, 0.7, 0.7)  # facenet-pytorch MTCNN's defaults, which the scanner has always used
FACTOR = 0.709  # each pyramid level's scale over the one before
RUNTIMES = ("auto", "onnx", "torch")
REFERENCE_KEY = "detector.torch_outputs"  # ONNX metadata: the network's outputs in torch on its check input

Net = Callable[[np.ndarray], tuple[np.ndarray, ...]]  # N×3×H×W float32 → the network's outputs
# Each network: its outputs (as facenet-pytorch returns them), the shape of its check input, and
# the axes of its input and of its outputs left free (PNet reads a whole pyramid level of any size).
SPECS = {
    "pnet": (("reg", "prob"), (2, 3, 41, 53), {0: "batch", 2: "height", 3: "width"}, {0: "batch", 2: "rows", 3: "cols"}),
    "rnet": (("reg", "prob"), (6, 3, 24, 24), {0: "batch"}, {0: "batch"}),
    "onet": (("reg", "points", "prob"), (6, 3, 48, 48), {0: "batch"}, {0: "batch"}),
}


@dataclass(frozen=True)
class Nets:
    """MTCNN's three networks, numpy in and out, and what runs them ("onnx" or "torch")."""
    pnet: Net
    rnet: Net
    onet: Net
    runtime: str


def load_nets(device: str = "cpu", runtime: str = "auto") -> Nets:
    """The networks in ONNX Runtime on a CPU ("auto": where they pass the check against torch, else
    torch with one log line; "onnx": a ModelError where they cannot), in torch for "torch" and
    on a GPU (`device` is torch's: "cpu", "cuda")."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime != "torch" and device == "cpu":
        try:
            chosen = onnx.providers(device)
            sessions = {name: onnx.checked_session(_conversion(name), chosen, retry=runtime == "onnx") for name in SPECS}
            return Nets(*(_onnx_net(sessions[name]) for name in SPECS), runtime="onnx")
        except onnx.OnnxUnavailable as exc:
            if runtime == "onnx":
                raise ModelError(f"MTCNN cannot run in ONNX Runtime: {exc}") from None
            (log.info if isinstance(exc, onnx.OnnxMissing) else log.warning)(
                "MTCNN runs in torch, not ONNX Runtime: %s", exc)
    return torch_nets(device)


def torch_nets(device: str = "cpu") -> Nets:
    """facenet-pytorch's own modules. On a CPU with one torch thread: MTCNN's small convolutions
    gain little from a second OpenMP thread, which spins whenever a core is busy (ffmpeg decodes
    beside it, the classifier scores)."""
    import torch

    if device == "cpu":
        torch.set_num_threads(1)
    return Nets(*(_torch_net(_torch_module(name).to(device), device, chunk=None if name == "pnet" else 512)
                  for name in SPECS), runtime="torch")


def _torch_module(name: str):
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    return {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]().eval()


def _torch_net(module, device: str, chunk: int | None) -> Net:
    """A torch module as a Net; RNet and ONet take at most `chunk` crops a call, as facenet-pytorch
    feeds them (it spares a GPU's memory on crowded frames)."""
    import torch

    def run(batch: np.ndarray) -> tuple[np.ndarray, ...]:
        step = chunk or len(batch)
        with torch.inference_mode():
            parts = [module(torch.from_numpy(batch[i:i + step]).to(device)) for i in range(0, len(batch), step)]
        return tuple(np.concatenate([part[k].cpu().numpy() for part in parts]) for k in range(len(parts[0])))

    return run


def _onnx_net(session) -> Net:
    return lambda batch: tuple(session.run(None, {"input": batch}))


def _conversion(name: str) -> onnx.Conversion:
    """How one network gets into ONNX Runtime: exported from facenet-pytorch's module (torch is
    imported for that alone), checked on seeded inputs in MTCNN's [-1, 1] range, cached under the
    hash of its weights file."""
    outputs, shape, input_axes, output_axes = SPECS[name]
    probe = np.random.default_rng(12).uniform(-1.0, 1.0, shape).astype(np.float32)

    def convert() -> tuple[bytes, np.ndarray]:
        module = _torch_module(name)
        reference = np.concatenate([out.ravel() for out in _torch_net(module, "cpu", None)(probe)])
        axes = {"input": input_axes, **{out: output_axes for out in outputs}}
        return onnx.export_torch(module, probe, list(outputs), axes), reference

    def check(session) -> np.ndarray:
        return np.concatenate([out.ravel() for out in session.run(None, {"input": probe})])

    digest = hashlib.sha256((_weights_folder() / f"{name}.pt").read_bytes()).hexdigest()[:12]
    return onnx.Conversion(onnx.cache_file(f"mtcnn-{name}-{digest}"), "torch", REFERENCE_KEY, convert, check)


def _weights_folder() -> Path:
    """facenet-pytorch's data folder (pnet.pt, rnet.pt, onet.pt), found without importing it."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise onnx.OnnxMissing("facenet-pytorch is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def cascade(frames: np.ndarray, min_face: float, nets: Nets, pnet: Net | None = None,
            regions: list | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """MTCNN on N same-sized frames (N×H×W×3 uint8), as facenet-pytorch's `detect_face` runs it with
    the scanner's thresholds: per frame, the detections (K×5: box, probability) and their landmarks
    (K×5×2). `pnet` (default nets.pnet) may look at parts of each level only (faces._RegionPNet);
    `regions` (detection-frame boxes) then limits the pyramid to the parts it reads."""
    pnet = pnet or nets.pnet
    count, height, width = frames.shape[:3]
    pyramid = AreaPyramid(frames, regions)
    m = 12.0 / min_face
    smallest = min(height, width) * m
    scales, scale = [], m
    while smallest >= 12:
        scales.append(scale)
        scale, smallest = scale * FACTOR, smallest * FACTOR

    # first stage: PNet's candidates at every level, suppressed within the level, then across levels
    found, images = [np.zeros((0, 9), np.float32)], [np.zeros(0, np.int64)]
    for scale in scales:
        reg, prob = pnet(_normalised(pyramid.level((int(height * scale + 1), int(width * scale + 1)))))
        boxes, image = _candidates(reg, prob[:, 1], scale, THRESHOLDS[0])
        keep = _batched_nms(boxes[:, :4], boxes[:, 4], image, 0.5)
        found.append(boxes[keep])
        images.append(image[keep])
    boxes, image = np.concatenate(found), np.concatenate(images)
    keep = _batched_nms(boxes[:, :4], boxes[:, 4], image, 0.7)
    boxes, image = boxes[keep], image[keep]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = _square(np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                              boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], 1))

    crops, boxes, image = pyramid.crops(boxes, image, 24)
    if len(boxes):  # second stage: RNet on each candidate's 24×24 crop
        reg, prob = nets.rnet(_normalised(crops))
        passed = prob[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], 1)
        image, reg = image[passed], reg[passed]
        keep = _batched_nms(boxes[:, :4], boxes[:, 4], image, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        image = image[keep]

    points = np.zeros((0, 5, 2), np.float32)
    crops, boxes, image = pyramid.crops(boxes, image, 48)
    if len(boxes):  # third stage: ONet on 48×48 crops, with the landmarks
        reg, marks, prob = nets.onet(_normalised(crops))
        passed = prob[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], 1)
        image, reg, marks = image[passed], reg[passed], marks[passed]
        side_x, side_y = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack([side_x[:, None] * marks[:, :5] + boxes[:, :1] - 1,
                           side_y[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2)
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes[:, :4], boxes[:, 4], image, 0.7)
        boxes, image, points = boxes[keep], image[keep], points[keep]
    return [(boxes[image == i].reshape(-1, 5), points[image == i].reshape(-1, 5, 2)) for i in range(count)]


def _normalised(pixels: np.ndarray) -> np.ndarray:
    return (pixels - 127.5) * 0.0078125


def _candidates(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """facenet-pytorch's generateBoundingBox: a 12-pixel window per PNet cell at or over the
    threshold, in the frame's pixels (K×9: box, score, regression), and the frame of each."""
    image, y, x = np.nonzero(prob >= threshold)
    cells = np.stack([x, y], 1).astype(np.float32)
    scale = np.float32(scale)
    return np.concatenate([np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale),
                           prob[image, y, x][:, None], reg[image, :, y, x]], 1), image


def _square(boxes: np.ndarray) -> np.ndarray:
    """facenet-pytorch's rerec: each box grown to a square about its centre."""
    boxes = boxes.copy()
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """facenet-pytorch's bbreg: each box moved by the network's offsets, in units of its side (+1)."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = np.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                             boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], 1)
    return boxes


def _batched_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's batched_nms on a CPU: the kept indices, best first, suppressed within each
    frame only, by the same route (boxes of other frames shifted apart, or frame by frame above
    1000 boxes) so that float32 rounding decides alike."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if boxes.size > 4000:
        kept = np.zeros(len(boxes), bool)
        for group in np.unique(groups):
            members = np.nonzero(groups == group)[0]
            kept[members[_nms(boxes[members], scores[members], threshold)]] = True
        kept = np.nonzero(kept)[0]
        return kept[np.argsort(-scores[kept], kind="stable")]
    offsets = groups.astype(np.float32) * (boxes.max() + np.float32(1))
    return _nms(boxes + offsets[:, None], scores, threshold)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's nms kernel: greedy by descending score, dropping boxes whose IoU with a kept
    one is over the threshold."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    dropped = np.zeros(len(boxes), bool)
    keep = []
    for position, i in enumerate(order):
        if dropped[i]:
            continue
        keep.append(i)
        rest = order[position + 1:]
        rest = rest[~dropped[rest]]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        dropped[rest[inter / (areas[i] + areas[rest] - inter) > threshold]] = True
    return np.array(keep, np.int64)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's last suppression (batched_nms_numpy, "Min"): overlap over the smaller
    box's area, +1-pixel areas, frames shifted apart as it shifts them."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shifted = boxes + (groups.astype(np.float32) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = (shifted[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = np.zeros_like(scores, dtype=np.int16)
    counter = 0
    while order.size > 0:
        i = order[-1]
        pick[counter] = i
        counter += 1
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = order[np.where(w * h / np.minimum(area[i], area[rest]) <= threshold)]
    return pick[:counter].astype(np.int64)


class AreaPyramid:
    """PyTorch's area interpolation (facenet-pytorch's `imresample`) of the frames, for MTCNN's image
    pyramid and the crops its later stages see, worked out from one integral image per frame
    instead of from every pixel at every level.

    An output pixel is the mean of its input bin; the frames' pixels are whole numbers, so a bin's
    sum is exact in int32 (as PyTorch's float32 sum of them is), and dividing it by the bin's height,
    then by its width, in float32 is what PyTorch's CPU kernel does: the results are identical, bit
    for bit (tests/test_mtcnn.py checks it). With `regions` (detection-frame boxes), a level is
    worked out only where faces._RegionPNet reads it, and is zero elsewhere."""

    def __init__(self, frames: np.ndarray, regions: list | None = None):
        self.size = frames.shape[1:3]
        self.integral = np.stack([cv2.integral(frame, sdepth=cv2.CV_32S) for frame in frames])
        self.regions = regions

    def level(self, size: tuple[int, int]) -> np.ndarray:
        """The frames resampled to size (height, width), N×3×height×width float32."""
        height, width = self.size
        if self.regions is None:
            return self._means(_bins(height, size[0]), _bins(width, size[1]))
        level = np.zeros((len(self.integral), 3, *size), np.float32)
        for y0, y1, x0, x1 in level_windows(self.regions, (width, height), size):
            level[:, :, y0:y1, x0:x1] = self._means(_bins(height, size[0], y0, y1), _bins(width, size[1], x0, x1))
        return level

    def _means(self, ys: tuple[np.ndarray, np.ndarray], xs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        (y0, y1), (x0, x1) = ys, xs
        rows = self.integral[:, y1] - self.integral[:, y0]
        means = (rows[:, :, x1] - rows[:, :, x0]).astype(np.float32)
        means /= (y1 - y0).astype(np.float32)[:, None, None]
        means /= (x1 - x0).astype(np.float32)[None, :, None]
        return np.ascontiguousarray(means.transpose(0, 3, 1, 2))

    def crops(self, boxes: np.ndarray, images: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """facenet-pytorch's pad and crop: each box cut from its frame (clipped to it) and resampled
        to side×side (K×3×side×side float32), with the boxes and frame indices that gave one. A box
        wholly outside its frame gives none (facenet-pytorch would pair the crops with the wrong
        boxes from there on)."""
        height, width = self.size
        x, y, ex, ey = np.trunc(boxes[:, :4]).astype(np.int32).T
        x, y, ex, ey = np.maximum(x, 1), np.maximum(y, 1), np.minimum(ex, width), np.minimum(ey, height)
        ok = (ey > y - 1) & (ex > x - 1)
        x, y, ex, ey, boxes, images = x[ok], y[ok], ex[ok], ey[ok], boxes[ok], images[ok]
        step = np.arange(side)
        top, left, rows, cols = y - 1, x - 1, (ey - y + 1)[:, None], (ex - x + 1)[:, None]
        y0, y1 = top[:, None] + step * rows // side, top[:, None] - (-(step + 1) * rows // side)
        x0, x1 = left[:, None] + step * cols // side, left[:, None] - (-(step + 1) * cols // side)
        frame, y0, y1, x0, x1 = images[:, None, None], y0[:, :, None], y1[:, :, None], x0[:, None, :], x1[:, None, :]
        sums = (self.integral[frame, y1, x1] - self.integral[frame, y0, x1]
                - self.integral[frame, y1, x0] + self.integral[frame, y0, x0])
        means = sums.astype(np.float32)
        means /= (y1 - y0).astype(np.float32)[..., None]
        means /= (x1 - x0).astype(np.float32)[..., None]
        return np.ascontiguousarray(means.transpose(0, 3, 1, 2)), boxes, images


def _bins(side: int, out: int, first: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of output pixels first..end's input spans, as adaptive average
    pooling (PyTorch's area interpolation) has them."""
    i = np.arange(first, out if end is None else end)
    return i * side // out, -(-(i + 1) * side // out)


def level_windows(regions: list, size: tuple[int, int], level: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The parts (y0, y1, x0, x1) of a pyramid level (height, width) that PNet reads for regions
    given in pixels of the detection frame (`size`, width × height)."""
    height, width = level
    windows = []
    for left, top, right, bottom in regions:
        # the level's scale is about (side - 1) / frame side; 12 pixels more each way take in
        # every 12×12 window that overlaps the region
        x0, x1 = _even_span(left * (width - 1) / size[0], right * (width - 1) / size[0], width)
        y0, y1 = _even_span(top * (height - 1) / size[1], bottom * (height - 1) / size[1], height)
        if x1 - x0 >= 12 and y1 - y0 >= 12:
            windows.append((y0, y1, x0, x1))
    return windows


def _even_span(start: float, end: float, side: int) -> tuple[int, int]:
    """[start, end) grown by one 12-pixel window, starting even and spanning an even count unless at the edge."""
    lo = max(0, int(np.floor(start)) - 12) // 2 * 2
    hi = min(side, int(np.ceil(end)) + 12)
    if (hi - lo) % 2 and hi < side:
        hi += 1
    return lo, hi
