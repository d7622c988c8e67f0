"""Stage 2 — faces: MTCNN detection on downscaled frames, whole or only near known faces.

Detection runs on a smaller copy of each frame (MTCNN's cost grows with the pixel count) and the
boxes are mapped back to full resolution, where crop.py cuts the crop the model sees; tracking.py
decides which frames are searched whole and links faces into tracks. MTCNN itself (facenet-pytorch's
networks and cascade, in ONNX Runtime and numpy) is mtcnn.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.scan import mtcnn

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
    """MTCNN over a batch of same-sized frames. `runtime` is what runs its networks (mtcnn.load_nets):
    "auto", "onnx" or "torch"; on a GPU (`device` "cuda") torch."""

    def __init__(self, device: str = "cpu", detect_side: int = DETECT_SIDE, min_face: int = MIN_FACE,
                 runtime: str = "auto"):
        self.device = device
        self.detect_side = detect_side
        self.min_face = min_face
        self.nets = mtcnn.load_nets(device, runtime)
        # Following faces (detect_near) saves CPU time; on a GPU full passes over 8 frames at a time
        # are cheaper than a frame-by-frame search near faces (bench/face_stage.py measures both).
        self.follows_faces = device == "cpu"

    @property
    def runtime(self) -> str:
        """What runs MTCNN's networks: "onnx" or "torch"."""
        return self.nets.runtime

    def detect(self, images: list[np.ndarray], first_index: int = 0) -> list[list[Face]]:
        """Faces in each image (all of one size), largest first, boxes in full-resolution pixels."""
        if not images:
            return []
        height, width = images[0].shape[:2]
        scale, size = self._detect_size(width, height)
        small = np.stack([
            cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image for image in images
        ])
        # MTCNN's image pyramid starts at min_face pixels: a smaller frame gets no level at all, so
        # nothing can be found in it.
        if min(small.shape[1:3]) < max(12, self.min_face):
            return [[] for _ in images]
        found = mtcnn.cascade(small, self.min_face, self.nets)
        return [_largest(_faces(first_index + i, boxes[:, :4], boxes[:, 4], points, scale, (0.0, 0.0), (width, height)))
                for i, (boxes, points) in enumerate(found)]

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
        while min_face / mtcnn.FACTOR <= min(smallest / 2, *size):
            min_face /= mtcnn.FACTOR
        (found, points), = mtcnn.cascade(small[None], min_face, self.nets, _RegionPNet(self.nets.pnet, regions, size),
                                         regions)
        if any(not any(_inside(box, region) for region in regions) for box in found[:, :4]):
            return None
        return _largest(_faces(index, found[:, :4], found[:, 4], points, scale, (0.0, 0.0), (width, height)))


class _RegionPNet:
    """MTCNN's PNet looking only inside regions (boxes in the detection frame's pixels): elsewhere
    each pyramid level gets probability 0, so no candidates. PNet is convolutions without padding
    and one 2×2 pool of stride 2, so on a crop that starts at an even pixel (and spans an even
    width, or reaches the level's edge) it gives exactly the whole level's outputs there."""

    def __init__(self, pnet: mtcnn.Net, regions: list[tuple[float, float, float, float]], size: tuple[int, int]):
        self.pnet, self.regions, self.size = pnet, regions, size

    def __call__(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = level.shape[2:]
        reg = np.zeros((len(level), 4, _pnet_cells(height), _pnet_cells(width)), np.float32)
        prob = np.zeros((len(level), 2, _pnet_cells(height), _pnet_cells(width)), np.float32)
        for y0, y1, x0, x1 in mtcnn.level_windows(self.regions, self.size, (height, width)):
            r, p = self.pnet(np.ascontiguousarray(level[:, :, y0:y1, x0:x1]))
            cells = (slice(None), slice(None), slice(y0 // 2, y0 // 2 + r.shape[2]), slice(x0 // 2, x0 // 2 + r.shape[3]))
            reg[cells], prob[cells] = r, p
        return reg, prob


def _pnet_cells(side: int) -> int:
    """PNet's output size for an input side: 3×3 conv, 2×2 pool (stride 2, partial last), two 3×3 convs."""
    return max(0, -(-(side - 4) // 2) - 3)


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
