"""Self-blended images (Shiohara & Yamasaki, CVPR 2022, "SBI").

A pseudo-fake is made from a real face crop alone: a slightly altered copy of
the face is blended back into the original inside a soft face mask. The result
carries the generic traces of face swapping (blend boundary, colour and
sharpness mismatch, small misalignment) without the fingerprint of any one
generator, which is why detectors trained on it generalise.

Landmarks are MTCNN's five points in crop pixel coordinates (x, y): left eye,
right eye, nose, mouth left, mouth right. Mask geometry is measured in units of
the eye-mouth distance so that it follows the face rather than the crop size.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

# Points that extend the 5-landmark hull to the whole face. Each row is
# (anchor, across, up): anchor indexes the 5 landmarks plus 5 = eye centre and
# 6 = mouth centre; `across` is along the eye axis in eye-distance units,
# `up` is towards the brows in eye-mouth units.
_FACE_OUTLINE = (
    (0, -0.25, 0.45),  # left brow
    (5, 0.0, 0.55),  # between the brows
    (1, 0.25, 0.45),  # right brow
    (0, -0.40, 0.0),  # left temple
    (1, 0.40, 0.0),  # right temple
    (0, -0.35, -0.55),  # left cheek
    (1, 0.35, -0.55),  # right cheek
    (3, -0.30, -0.15),  # left jaw
    (4, 0.30, -0.15),  # right jaw
    (3, 0.0, -0.60),  # left of chin
    (4, 0.0, -0.60),  # right of chin
    (6, 0.0, -0.80),  # chin
)
_OUTLINE_ANCHOR = np.array([row[0] for row in _FACE_OUTLINE])
_OUTLINE_ACROSS = np.array([row[1] for row in _FACE_OUTLINE], dtype=np.float32)
_OUTLINE_UP = np.array([row[2] for row in _FACE_OUTLINE], dtype=np.float32)

# Every mask pixel lies within this many face units (the larger of eye-mouth
# and eye distance) of the landmarks' bounding box: outline (<= 0.8) + jitter
# + dilation + blur radius.
MASK_REACH = 1.2

_JITTER = 0.06  # per-vertex jitter, eye-mouth units
_MAX_MORPH = 0.08  # erosion/dilation radius, eye-mouth units
_MAX_BLUR = 0.2  # Gaussian blur radius, eye-mouth units
_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # SBI's, biased to full blend


def _face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Anchors (landmarks + eye/mouth centres), unit axes and face scales."""
    pts = landmarks.astype(np.float32)
    eye_c = (pts[0] + pts[1]) / 2
    mouth_c = (pts[3] + pts[4]) / 2
    anchors = np.vstack([pts, eye_c, mouth_c])
    up_vec = eye_c - mouth_c
    eye_mouth = max(float(np.linalg.norm(up_vec)), 1.0)
    up = up_vec / eye_mouth
    across = np.array([-up[1], up[0]], dtype=np.float32)  # perpendicular to up
    if np.dot(across, pts[1] - pts[0]) < 0:  # point from left eye to right eye
        across = -across
    eye_dist = max(float(np.linalg.norm(pts[1] - pts[0])), 1.0)
    return anchors, up, eye_mouth, eye_dist, across


def _odd(x: float) -> int:
    """Smallest odd kernel size >= x (and >= 3)."""
    k = max(int(np.ceil(x)), 3)
    return k if k % 2 else k + 1


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random soft face mask (float32 HxW in [0, 1]) for blending.

    The hull is randomly shrunk, jittered, eroded or dilated and blurred so the
    detector sees many boundary shapes and widths instead of learning one.
    """
    h, w = shape
    anchors, up, eye_mouth, eye_dist, across = _face_axes(landmarks)

    extent = rng.uniform(0.7, 1.0)  # from inner face to full face
    outline = (
        anchors[_OUTLINE_ANCHOR]
        + extent * _OUTLINE_ACROSS[:, None] * eye_dist * across
        + extent * _OUTLINE_UP[:, None] * eye_mouth * up
    )
    outline += rng.uniform(-_JITTER, _JITTER, size=outline.shape) * eye_mouth
    hull = cv2.convexHull(np.vstack([anchors[:5], outline]).round().astype(np.int32))
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)

    radius = int(rng.uniform(0.0, _MAX_MORPH) * eye_mouth)
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(mask, kernel)

    # Like SBI: blur and keep only the saturated core (rounds off corners),
    # then blur again for the soft edge. Explicit kernel sizes give the blur
    # finite support, so the mask is exactly zero away from the face.
    soft = mask.astype(np.float32)
    k1 = _odd(rng.uniform(0.05, _MAX_BLUR) * 2 * eye_mouth)
    soft = cv2.GaussianBlur(soft, (k1, k1), 0)
    soft = (soft >= soft.max() - 1e-6).astype(np.float32) if soft.max() > 0 else soft
    k2 = _odd(rng.uniform(0.05, _MAX_BLUR) * 2 * eye_mouth)
    soft = cv2.GaussianBlur(soft, (k2, k2), 0)
    peak = soft.max()
    if peak > 0:
        soft /= peak
    return soft * np.float32(rng.choice(_BLEND_RATIOS))


def _colour_and_quality(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small colour shift and sharpen/blur: the mismatch a face swap leaves."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + rng.integers(-3, 4)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.9, 1.1), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)

    if rng.random() < 0.3:
        out += rng.uniform(-20, 20, size=3).astype(np.float32)
    contrast = rng.uniform(0.9, 1.1)
    brightness = rng.uniform(-0.1, 0.1) * 255
    out = (out - out.mean()) * contrast + out.mean() + brightness

    if rng.random() < 0.5:  # unsharp mask
        amount = rng.uniform(0.2, 0.8)
        out += amount * (out - cv2.GaussianBlur(out, (0, 0), 1.0))
    else:  # down/up-scaling blur, as in SBI's RandomDownScale
        h, w = out.shape[:2]
        factor = rng.uniform(1.5, 3.0)
        small = cv2.resize(out, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0, 255)


def _misalign(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small random scale and shift, mimicking imperfect face alignment."""
    h, w = image.shape[:2]
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-1, 1, size=2) * (0.03 * w, 0.015 * h)  # SBI's ranges
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def self_blend(
    image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blend an altered copy of the face into `image`; return (fake, mask).

    SBI applies the colour/quality change to the source or the target at
    random. Here the target is always the untouched input, so the output
    equals the input wherever mask == 0 (the pair differs only in the face);
    the randomness of direction is kept because every colour/quality change is
    drawn symmetrically (brighter or darker, sharper or blurrier).
    """
    mask = face_mask(image.shape[:2], landmarks, rng)
    source = _misalign(_colour_and_quality(image, rng), rng)
    target = image.astype(np.float32)
    alpha = mask[..., None] if image.ndim == 3 else mask
    blended = target + alpha * (source - target)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8), mask


def sample_grid(pairs: list[tuple[np.ndarray, np.ndarray]], path: Path, seed: int = 0) -> None:
    """Write a PNG of rows (real, self-blended, mask) to check blends by eye.

    `pairs` are (real RGB crop, its 5 landmarks); blends use a fixed seed so a
    grid is reproducible.
    """
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(7.5, 2.5 * len(pairs)), dpi=100)
    axes = fig.subplots(len(pairs), 3, squeeze=False)
    for row, (image, landmarks) in zip(axes, pairs):
        fake, mask = self_blend(image, landmarks, rng)
        row[0].imshow(image)
        row[0].scatter(landmarks[:, 0], landmarks[:, 1], s=6, c="lime")
        row[1].imshow(fake)
        row[2].imshow(mask, cmap="gray", vmin=0, vmax=1)
        for ax in row:
            ax.set_axis_off()
    for ax, title in zip(axes[0], ("real", "self-blended", "mask")):
        ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
