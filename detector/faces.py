"""Stage 2 — faces: MTCNN detection on downscaled frames, square crops at full resolution, tracks.

Detection runs on a smaller copy of each frame (MTCNN's cost grows with the pixel count) and the
boxes are mapped back, so the crop the model sees keeps every pixel of the original face. The
crop is the same function for scanning and for building training data, so both see identical
faces.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import bbreg, pad, rerec  # MTCNN's own box arithmetic

CROP_MARGIN = 0.3  # the crop's side is the box's longer side × (1 + margin): keeps the face edge
# Frames are detected with their longer side at most DETECT_SIDE; MIN_FACE is the smallest face
# MTCNN looks for, in pixels of the detection frame (27 of 360 = 7.5% of a 16:9 frame's height).
# MTCNN's first pyramid level is side × 12/MIN_FACE whatever the side, so the ratio, not the side,
# sets what is found; a smaller side only makes the pyramid cheaper to build. bench/benchmark.py
# measures the effect (swap the values back to 960/40 to compare).
DETECT_SIDE = 640
MIN_FACE = 27
MIN_PROB = 0.9  # MTCNN's own confidence below which a detection is dropped as a false positive
MAX_FACES = 8  # per frame, largest first: bounds the work on crowd shots
LINK_IOU = 0.2  # two detections in neighbouring samples are one person above this overlap
# Tracking (--detect-every N > 1): between full-frame passes (every N-th sampled frame, and
# whenever a face is lost) MTCNN's last two stages (RNet, ONet) re-fit each face's previous box on
# the new frame. Off by default: its boxes differ from a full pass's by a few per cent of the face,
# which moves the bundled model's p_fake by up to about 0.1 on some clips (README, Speed).
DETECT_EVERY = 1


@dataclass(frozen=True)
class Face:
    frame: int  # index of the sampled frame it was found in
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in full-resolution pixels
    prob: float
    landmarks: np.ndarray = field(repr=False)  # 5×2: eyes, nose, mouth corners (full resolution)


@dataclass(frozen=True)
class Crop:
    face: Face
    image: np.ndarray = field(repr=False)  # size×size×3 uint8 RGB
    landmarks: np.ndarray = field(repr=False)  # 5×2 in crop pixels, for self-blended training fakes


class FaceDetector:
    """facenet-pytorch MTCNN over a batch of same-sized frames."""

    def __init__(self, device: str = "cpu", detect_side: int = DETECT_SIDE, min_face: int = MIN_FACE):
        if device == "cpu":
            # One torch thread: MTCNN's small convolutions gain little from a second OpenMP thread,
            # which spins whenever a core is busy (ffmpeg decodes beside it, TensorFlow scores);
            # compare with bench/benchmark.py.
            torch.set_num_threads(1)
        self.detect_side = detect_side
        self.min_face = min_face
        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face, device=torch.device(device))

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
        with torch.inference_mode():
            boxes, probs, points = self.mtcnn.detect(small, landmarks=True)
        return [_largest(_faces(first_index + offset, *found, scale, (0.0, 0.0), (width, height)))
                for offset, found in enumerate(zip(boxes, probs, points))]

    def _detect_size(self, width: int, height: int) -> tuple[float, tuple[int, int]]:
        """The scale and (width, height) at which MTCNN sees a frame: longer side ≤ detect_side."""
        scale = min(1.0, self.detect_side / max(height, width))
        return scale, (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1.0 else (width, height)

    def detect_near(self, image: np.ndarray, index: int, boxes: list[tuple[float, ...]]) -> list[Face]:
        """Faces near `boxes` (where faces were in the previous sampled frame), largest first.

        Only MTCNN's last two stages run, as in a full pass but starting from the previous box
        instead of the image pyramid's candidates: RNet, then ONet (which gives the final box,
        landmarks and confidence) each re-fit the square around the box (in the downscaled frame's
        coordinates; only that square is read, from the full frame). Much cheaper than a full pass;
        a face that moved more than about half its size is not re-found (too little confidence).
        """
        height, width = image.shape[:2]
        scale, (small_width, small_height) = self._detect_size(width, height)
        if not boxes:
            return []
        fitted = torch.tensor([[v * scale for v in box] for box in boxes], dtype=torch.float32)
        with torch.inference_mode():
            for net, side in ((self.mtcnn.rnet, 24), (self.mtcnn.onet, 48)):
                squares = rerec(fitted.clone())
                y, ey, x, ex = pad(squares, small_width, small_height)
                inside = (ey > y - 1) & (ex > x - 1)
                if not inside.all():  # a box entirely off the frame: that face has left
                    squares, y, ey, x, ex = squares[torch.from_numpy(inside)], y[inside], ey[inside], x[inside], ex[inside]
                if not len(squares):
                    return []
                patches = [_patch(image, (x[k] - 1, y[k] - 1, ex[k], ey[k]), scale, side) for k in range(len(squares))]
                crops = torch.from_numpy(np.stack(patches).astype(np.float32)).permute(0, 3, 1, 2)
                moves, *_, probs = out = net((crops - 127.5) * 0.0078125)
                fitted = bbreg(squares.clone(), moves)
            points = out[1]
        sides = squares[:, 2:4] - squares[:, 0:2] + 1  # landmarks are relative to the square ONet saw
        points = points.reshape(-1, 2, 5).permute(0, 2, 1) * sides.unsqueeze(1) + squares[:, None, 0:2] - 1
        found = _faces(index, fitted.numpy(), probs[:, 1].numpy(), points.numpy(), scale, (0.0, 0.0), (width, height))
        faces: list[Face] = []
        for face in sorted(found, key=lambda f: f.prob, reverse=True):
            if all(_iou(face.box, kept.box) < 0.5 for kept in faces):  # two tracks converged on one face
                faces.append(face)
        return _largest(faces)


class FaceTracker:
    """Faces in a clip's sampled frames, frame by frame: a full-frame pass every `every`-th frame,
    and whenever there is no face to follow or one is lost; in between, each face is searched for
    only near where it was (FaceDetector.detect_near), a small part of a full pass's cost. New faces are
    found by the next full pass; `every=1` is a full pass on every frame."""

    def __init__(self, detector: FaceDetector, every: int = DETECT_EVERY):
        self.detector, self.every = detector, max(1, every)
        self.previous: list[Face] = []
        self.full_passes = 0

    def __call__(self, image: np.ndarray, index: int) -> list[Face]:
        if index % self.every and self.previous:
            near = self.detector.detect_near(image, index, [face.box for face in self.previous])
            if all(any(_iou(face.box, now.box) >= LINK_IOU for now in near) for face in self.previous):
                self.previous = near
                return near
        self.full_passes += 1
        self.previous = self.detector.detect([image], index)[0]
        return self.previous


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


def _patch(image: np.ndarray, box: tuple[int, int, int, int], scale: float, side: int = 48) -> np.ndarray:
    """ONet's side×side input for a box given in the downscaled frame, read from the full frame."""
    x1, y1, x2, y2 = (round(v / scale) for v in box)
    return cv2.resize(image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)], (side, side), interpolation=cv2.INTER_AREA)


def _largest(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)[:MAX_FACES]


def crop_face(image: np.ndarray, face: Face, size: int, margin: float = CROP_MARGIN) -> Crop:
    """A square crop centred on the face, padded with black past the frame edge, resized to size.

    Square first, then resized, so the face is never stretched; area interpolation when shrinking
    avoids aliasing, cubic when enlarging a small face.
    """
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    side_px = max(1, int(round(side)))
    square = _square(image, left, top, side_px)
    interpolation = cv2.INTER_AREA if side_px > size else cv2.INTER_CUBIC
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    landmarks = (face.landmarks - np.array([left, top], np.float32)) * (size / side_px)
    return Crop(face, resized, landmarks.astype(np.float32))


def _square(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The side×side square of the image whose corner is at (left, top), black past its edges."""
    height, width = image.shape[:2]
    square = np.zeros((side, side, 3), np.uint8)
    sx1, sy1 = max(0, left), max(0, top)
    sx2, sy2 = min(width, left + side), min(height, top + side)
    if sx2 > sx1 and sy2 > sy1:
        square[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = image[sy1:sy2, sx1:sx2]
    return square


def link_tracks(faces: list[Face]) -> list[int]:
    """Track id per face (faces in frame order): each face joins the track whose latest box overlaps
    it most, greedily, else starts a new track, so each person is scored on their own."""
    last_box: dict[int, tuple[float, float, float, float]] = {}
    by_frame: dict[int, list[int]] = {}
    for i, face in enumerate(faces):
        by_frame.setdefault(face.frame, []).append(i)
    track_of: list[int] = [-1] * len(faces)
    for frame in sorted(by_frame):
        members = by_frame[frame]
        pairs = sorted(
            ((_iou(faces[i].box, box), i, track) for i in members for track, box in last_box.items()),
            reverse=True,
        )
        taken: set[int] = set()
        for overlap, i, track in pairs:
            if overlap < LINK_IOU:
                break
            if track_of[i] == -1 and track not in taken:
                track_of[i] = track
                taken.add(track)
        for i in members:
            if track_of[i] == -1:
                track_of[i] = len(last_box)
            last_box[track_of[i]] = faces[i].box
    return track_of


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
