"""The square face crop the model sees, cut at full resolution: one function for scanning and for
building training data, so both see identical faces."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.scan.faces import Face

CROP_MARGIN = 0.3  # the crop's side is the box's longer side × (1 + margin): keeps the face edge


@dataclass(frozen=True)
class Crop:
    face: Face
    image: np.ndarray = field(repr=False)  # size×size×3 uint8 RGB
    landmarks: np.ndarray = field(repr=False)  # 5×2 in crop pixels, for self-blended training fakes


def crop_face(image: np.ndarray, face: Face, size: int, margin: float = CROP_MARGIN) -> Crop:
    """A square crop centred on the face, padded with black past the frame edge, resized to size.

    Square first, then resized, so the face is never stretched; area interpolation when shrinking
    avoids aliasing, cubic when enlarging a small face.
    """
    x1, y1, x2, y2 = face.box
    side = face.side * (1.0 + margin)
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
