"""Stage 2 — faces: MTCNN detection on downscaled frames, whole or only near known faces.

Detection runs on a smaller copy of each frame (MTCNN's cost grows with the pixel count) and the
boxes are mapped back to full resolution, where crop.py cuts the crop the model sees; tracking.py
decides which frames are searched whole and links faces into tracks.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import detect_face, imresample

# Frames are detected with their longer side at most DETECT_SIDE; MIN_FACE is the smallest face
# MTCNN looks for, in pixels of the detection frame (27 of 360 = 7.5% of a 16:9 frame's height).
# MTCNN's first pyramid level is side × 12/MIN_FACE whatever the side, so the ratio, not the side,
# sets what is found; a smaller side only makes the pyramid cheaper to build. bench/benchmark.py
# measures the effect (swap the values back to 960/40 to compare).
DETECT_SIDE = 640
MIN_FACE = 27
MIN_PROB = 0.9  # MTCNN's own confidence below which a detection is dropped as a false positive
MAX_FACES = 8  # per frame, largest first: bounds the work on crowd shots
# Tracking (tracking.py, --detect-every N > 1): between full-frame passes (every N-th sampled frame, and
# whenever a face is lost or nears the edge of its search region) each face is searched for only
# within its last box grown by NEAR_MARGIN of its side each way. Its boxes are a full pass's, so
# it is on by default (bench/fast_vs_thorough.py: p_fake within 0.004 of a full pass on every frame).
NEAR_MARGIN = 0.5


@dataclass(frozen=True)
class Face:
    frame: int  # index of the sampled frame it was found in
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in full-resolution pixels
    prob: float
    landmarks: np.ndarray = field(repr=False)  # 5×2: eyes, nose, mouth corners (full resolution)

    @property
    def side(self) -> float:
        """The box's longer side: what a crop is cut around, and a face's size in the verdict."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)


class FaceDetector:
    """facenet-pytorch MTCNN over a batch of same-sized frames."""

    def __init__(self, device: str = "cpu", detect_side: int = DETECT_SIDE, min_face: int = MIN_FACE):
        if device == "cpu":
            # One torch thread: MTCNN's small convolutions gain little from a second OpenMP thread,
            # which spins whenever a core is busy (ffmpeg decodes beside it, TensorFlow scores);
            # compare with bench/benchmark.py.
            torch.set_num_threads(1)
        self.device = device
        self.detect_side = detect_side
        self.min_face = min_face
        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face, device=torch.device(device))
        if device == "cpu":  # CPU kernels only: on a GPU these layouts would change cuDNN's arithmetic
            for net in (self.mtcnn.pnet, self.mtcnn.rnet, self.mtcnn.onet):
                for name, layer in list(net.named_children()):
                    if isinstance(layer, torch.nn.MaxPool2d):
                        setattr(net, name, _ChannelsLastPool(layer))
        # Following faces (detect_near) saves CPU time; on a GPU full passes over 8 frames at a time
        # are cheaper than a frame-by-frame search near faces (bench/face_stage.py measures both).
        self.follows_faces = device == "cpu"

    def detect(self, images: list[np.ndarray], first_index: int = 0) -> list[list[Face]]:
        """Faces in each image (all of one size), largest first, boxes in full-resolution pixels."""
        if not images:
            return []
        height, width = images[0].shape[:2]
        scale, size = self._detect_size(width, height)
        small = np.stack([
            cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image for image in images
        ])
        # MTCNN's image pyramid starts at min_face pixels: a smaller frame gets no scale at all and
        # facenet-pytorch fails on the empty pyramid (torch.cat of nothing), so nothing can be found.
        if min(small.shape[1:3]) < max(12, self.min_face):
            return [[] for _ in images]
        found = self.cascade(small, self.min_face, self.mtcnn.pnet)
        return [_largest(_faces(first_index + i, boxes[:, :4], boxes[:, 4], points, scale, (0.0, 0.0), (width, height)))
                for i, (boxes, points) in enumerate(found)]

    def cascade(self, small: np.ndarray, min_face: float, pnet: torch.nn.Module,
                regions: list | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """facenet-pytorch's MTCNN cascade on N same-sized detection frames (N×H×W×3 uint8): per frame,
        the detections (K×5: box, probability) and their landmarks (K×5×2), as MTCNN.detect finds them.

        On the CPU the frames go in plane by plane (_planar) and the image pyramid comes from one
        integral image per frame (_AreaPyramid) instead of PyTorch's area resampling of the whole
        frame at every level; both give the same numbers, bit for bit (bench/face_stage.py times the
        whole search against facenet-pytorch's). With
        `regions` (for _RegionPNet), only the parts of each level that PNet reads are worked out."""
        search = detect_face
        if self.device == "cpu":
            names = {**detect_face.__globals__, "imresample": _AreaPyramid(small, regions)}
            search = types.FunctionType(detect_face.__code__, names, detect_face.__name__, detect_face.__defaults__)
        with torch.inference_mode():
            found, points = search(_planar(small) if self.device == "cpu" else small, min_face, pnet,
                                   self.mtcnn.rnet, self.mtcnn.onet, self.mtcnn.thresholds, self.mtcnn.factor,
                                   self.mtcnn.device)
        return [(np.asarray(f, np.float32).reshape(-1, 5), np.asarray(p, np.float32).reshape(-1, 5, 2))
                for f, p in zip(found, points)]

    def _detect_size(self, width: int, height: int) -> tuple[float, tuple[int, int]]:
        """The scale and (width, height) at which MTCNN sees a frame: longer side ≤ detect_side."""
        scale = min(1.0, self.detect_side / max(height, width))
        return scale, (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1.0 else (width, height)

    def detect_near(self, image: np.ndarray, index: int, boxes: list[tuple[float, ...]]) -> list[Face] | None:
        """Faces near `boxes` (where faces were in the previous sampled frame), largest first; None
        when a face has moved to the edge of where it was looked for, and only a full pass can tell.

        MTCNN runs as in a full pass, except that its first stage (PNet) reads only each box grown
        by NEAR_MARGIN of its side, at the pyramid levels whose window is at least half the smallest
        box. A full pass's other candidates do not overlap a face found inside those regions, so
        they cannot change it: the faces and boxes are a full pass's (tests/test_tracking.py and
        bench/fast_vs_thorough.py check it).
        """
        height, width = image.shape[:2]
        scale, size = self._detect_size(width, height)
        if not boxes:
            return []
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
        regions = [_grown([v * scale for v in box], NEAR_MARGIN) for box in boxes]
        smallest = min(max(x2 - x1, y2 - y1) for x1, y1, x2, y2 in (np.array(boxes) * scale))
        # The full pass's pyramid without its finest levels: its first window is min_face, each
        # next one 1/factor as large; a face is found at windows of about its own size. (A window
        # wider than the frame's short side would leave no level at all.)
        min_face = self.min_face
        while min_face / self.mtcnn.factor <= min(smallest / 2, *size):
            min_face /= self.mtcnn.factor
        (found, points), = self.cascade(small[None], min_face, _RegionPNet(self.mtcnn.pnet, regions, size), regions)
        if any(not any(_inside(box, region) for region in regions) for box in found[:, :4]):
            return None
        return _largest(_faces(index, found[:, :4], found[:, 4], points, scale, (0.0, 0.0), (width, height)))


class _ChannelsLastPool(torch.nn.Module):
    """A max-pool run on a channels-last copy: PyTorch's CPU kernel for that layout is faster on
    MTCNN's shapes (bench/face_stage.py times the whole search), and a maximum is the same
    whatever order it is taken in."""

    def __init__(self, pool: torch.nn.MaxPool2d):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x.contiguous(memory_format=torch.channels_last)).contiguous()


class _AreaPyramid:
    """facenet-pytorch's `imresample` (PyTorch's area interpolation) for MTCNN's image pyramid,
    worked out from one integral image of each frame instead of from every pixel at every level.

    An output pixel is the mean of its input bin; the frames' pixels are whole numbers, so a bin's
    sum is exact in int32 (as PyTorch's float32 sum of them is), and dividing it by the bin's height,
    then by its width, in float32 is what PyTorch's CPU kernel does: the levels are identical, bit
    for bit (tests/test_tracking.py checks it). Anything but a whole frame (the face boxes of
    MTCNN's later stages) goes to facenet-pytorch's own function. With `regions` (detection-frame
    boxes), a level is worked out only where _RegionPNet reads it, and is zero elsewhere."""

    def __init__(self, frames: np.ndarray, regions: list | None = None):
        self.shape = (len(frames), 3, *frames.shape[1:3])
        self.integral = np.stack([cv2.integral(frame, sdepth=cv2.CV_32S) for frame in frames])
        self.regions = regions

    def __call__(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(images.shape) != self.shape:
            return imresample(images, size)
        height, width = self.shape[2:]
        if self.regions is None:
            return self._means(_bins(height, size[0]), _bins(width, size[1]))
        level = torch.zeros(len(self.integral), 3, *size)
        for y0, y1, x0, x1 in _level_windows(self.regions, (width, height), size):
            level[:, :, y0:y1, x0:x1] = self._means(_bins(height, size[0], y0, y1), _bins(width, size[1], x0, x1))
        return level

    def _means(self, ys: tuple[np.ndarray, np.ndarray], xs: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        """The mean of every bin (rows ys × columns xs), N×3×len(ys)×len(xs)."""
        (y0, y1), (x0, x1) = ys, xs
        rows = self.integral[:, y1] - self.integral[:, y0]
        means = (rows[:, :, x1] - rows[:, :, x0]).astype(np.float32)
        means /= (y1 - y0).astype(np.float32)[:, None, None]
        means /= (x1 - x0).astype(np.float32)[None, :, None]
        return torch.from_numpy(means).permute(0, 3, 1, 2).contiguous()  # PNet's layout as PyTorch's gives it


def _bins(side: int, out: int, first: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of output pixels first..end's input spans, as adaptive average
    pooling (PyTorch's area interpolation) has them."""
    i = np.arange(first, out if end is None else end)
    return i * side // out, -(-(i + 1) * side // out)


class _RegionPNet(torch.nn.Module):
    """MTCNN's PNet looking only inside regions (boxes in the detection frame's pixels): elsewhere
    each pyramid level gets probability 0, so no candidates. PNet is convolutions without padding
    and one 2×2 pool of stride 2, so on a crop that starts at an even pixel (and spans an even
    width, or reaches the level's edge) it gives exactly the whole level's outputs there."""

    def __init__(self, pnet: torch.nn.Module, regions: list[tuple[float, float, float, float]], size: tuple[int, int]):
        super().__init__()
        self.pnet, self.regions, self.size = pnet, regions, size

    def forward(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = level.shape[2:]
        reg = level.new_zeros(len(level), 4, _pnet_cells(height), _pnet_cells(width))
        prob = level.new_zeros(len(level), 2, _pnet_cells(height), _pnet_cells(width))
        for y0, y1, x0, x1 in _level_windows(self.regions, self.size, (height, width)):
            r, p = self.pnet(level[:, :, y0:y1, x0:x1])
            cells = (slice(None), slice(None), slice(y0 // 2, y0 // 2 + r.shape[2]), slice(x0 // 2, x0 // 2 + r.shape[3]))
            reg[cells], prob[cells] = r, p
        return reg, prob


def _level_windows(regions: list, size: tuple[int, int], level: tuple[int, int]) -> list[tuple[int, int, int, int]]:
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


def _planar(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 frames as MTCNN takes them (float, N×H×W×3), but laid out plane by plane in memory:
    the N×3×H×W view MTCNN makes of it is then contiguous, which makes its image pyramid cheaper
    on a CPU (PyTorch's area resampling is slow on interleaved channels)."""
    planes = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)  # writable: decoded frames are not
    return torch.from_numpy(planes).permute(0, 2, 3, 1)


def _pnet_cells(side: int) -> int:
    """PNet's output size for an input side: 3×3 conv, 2×2 pool (stride 2, partial last), two 3×3 convs."""
    return max(0, -(-(side - 4) // 2) - 3)


def _even_span(start: float, end: float, side: int) -> tuple[int, int]:
    """[start, end) grown by one 12-pixel window, starting even and spanning an even count unless at the edge."""
    lo = max(0, int(np.floor(start)) - 12) // 2 * 2
    hi = min(side, int(np.ceil(end)) + 12)
    if (hi - lo) % 2 and hi < side:
        hi += 1
    return lo, hi


def _grown(box: list[float], margin: float) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    grow = max(x2 - x1, y2 - y1) * margin
    return x1 - grow, y1 - grow, x2 + grow, y2 + grow


def _inside(box: np.ndarray, region: tuple[float, ...]) -> bool:
    return bool(box[0] >= region[0] and box[1] >= region[1] and box[2] <= region[2] and box[3] <= region[3])


def _faces(index: int, boxes, probs, points, scale: float, origin: tuple[float, float],
           size: tuple[int, int]) -> list[Face]:
    """MTCNN's detections in an image scaled by `scale` whose corner sits at `origin` in the frame,
    as Faces in frame pixels; unsure ones and slivers are dropped."""
    if boxes is None:
        return []
    width, height = size
    faces = []
    for box, prob, lm in zip(boxes, probs, points):
        if prob is None or prob < MIN_PROB:
            continue
        x1, y1, x2, y2 = (float(v) / scale + origin[i % 2] for i, v in enumerate(box))
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        faces.append(Face(index, (x1, y1, x2, y2), float(prob), np.asarray(lm, np.float32) / scale + np.float32(origin)))
    return faces


def _largest(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)[:MAX_FACES]
