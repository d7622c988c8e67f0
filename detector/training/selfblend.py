"""Self-blended images (Shiohara & Yamasaki, CVPR 2022, "SBI"), made as the paper makes them.

A pseudo-fake is made from one real face alone: a transformed copy of the face (the source) is
blended into the face (the target) inside a soft face mask. The result carries the generic traces
of a face swap (a blend boundary, colour and sharpness mismatch, a small misalignment) without the
fingerprint of any one generator, which is why detectors trained on it generalise. As in the paper:

- the blend happens at the face's own resolution (the frame or photo region around it, larger
  than the crop), and both the target and the blend are then cut the scanner's way
  (`detector.scan.faces.crop_face`): the pair differs only inside the mask;
- the mask is the convex hull of dense face landmarks (the 468-point face mesh, one of four hull
  shapes at random), moved with the source by a random scale and shift, deformed elastically,
  blurred, and weighted by a random blend ratio;
- either the source or the target (at random) gets the paper's transforms: RGB shift,
  hue/saturation/value, brightness/contrast, then downscaling or sharpening. The target, so
  transformed or not, is the real face that trains beside the blend.

Mask geometry is measured in face units (the longer side of the mesh's bounding box), so a
blend looks the same whatever the resolution of the face.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from detector.scan.crop import crop_face
from detector.scan.faces import Face
from detector.data.landmarks import LEFT_BROW, LEFT_EYE, LIPS, NOSE, RIGHT_BROW, RIGHT_EYE

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # the paper's, biased to a full blend
SCALE = (0.95, 1 / 0.95)  # the source's random scale (with its mask), about the face centre
SHIFT = (0.04, 0.02)  # the source's largest random shift, x and y, in face units
WORK_SIDE = (150, 200)  # a face unit's length in pixels while the mask is deformed and blurred
ELASTIC_ALPHA, ELASTIC_SIGMA, ELASTIC_MAX = 50.0, 7.0, 5.0  # elastic deformation, in work pixels
BLUR_KERNELS = (5, 25)  # odd Gaussian kernel sides of the two mask blurs, in work pixels
PAD = 0.25  # face units of room round the hull for the deformation and blur
# No mask pixel lies farther than MASK_REACH face units from the landmarks' hull: the shift (0.04),
# the scale (0.053 × at most 0.71), the elastic limit (5/150) and the blur's radius (12/150), with a
# pixel to spare for resampling.
MASK_REACH = 0.22

_PARTS = (LEFT_EYE + LEFT_BROW, RIGHT_EYE + RIGHT_BROW, NOSE, LIPS)
_INNER = sum(_PARTS, ())
_BROWS = LEFT_BROW + RIGHT_BROW


@dataclass(frozen=True)
class SelfBlend:
    """A self-blend at the source's resolution: the real face it trains beside, the blend, and the mask."""
    real: np.ndarray  # H×W×3 uint8: the target (the input, or the input transformed)
    fake: np.ndarray  # H×W×3 uint8: real + mask · (source − real)
    mask: np.ndarray  # H×W float32 in [0, 1]: the blend weight


@dataclass(frozen=True)
class BlendCrops:
    """A self-blend cut the scanner's way: what the network sees."""
    real: np.ndarray  # size×size×3 uint8
    fake: np.ndarray
    mask: np.ndarray  # size×size float32


def face_unit(mesh: np.ndarray) -> float:
    """The longer side of the mesh's bounding box: the face's size in pixels."""
    return max(float(np.ptp(mesh[:, 0])), float(np.ptp(mesh[:, 1])), 1.0)


def hull_mask(shape: tuple[int, int], mesh: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A binary (uint8 0/1) face mask: the convex hull of the whole mesh, of the face from the
    brows down (no forehead), of the inner face (eyes, brows, nose, mouth) or of those four parts
    apart, chosen at random as the paper's hull types are."""
    kind = int(rng.integers(4))
    mask = np.zeros(shape, np.uint8)
    if kind == 0:
        parts = [mesh]
    elif kind == 1:
        up = mesh[list(LEFT_EYE + RIGHT_EYE)].mean(0) - mesh[list(LIPS)].mean(0)
        height = mesh @ up
        parts = [mesh[height <= height[list(_BROWS)].max()]]
    elif kind == 2:
        parts = [mesh[list(_INNER)]]
    else:
        parts = [mesh[list(part)] for part in _PARTS]
    for points in parts:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask


def transform(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's source/target transform: RGB shift (p 0.3), hue/saturation/value, brightness and
    contrast, then downscaling (½ or ¼, nearest, back up linearly) or sharpening. On uint8, as the
    paper's code works, the colour steps through lookup tables."""
    levels = np.arange(256, dtype=np.float32)[:, None]
    shift = rng.uniform(-20, 20, size=3) if rng.random() < 0.3 else np.zeros(3)
    out = _lookup(image, levels + shift.astype(np.float32))
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
    hue = (np.arange(256) + rng.uniform(-3, 3)) % 180  # OpenCV's hue runs 0..179
    saturation, value = (levels[:, 0] + rng.uniform(-10, 10) for _ in range(2))
    out = cv2.cvtColor(_lookup(hsv, np.stack([hue, saturation, value], axis=1)), cv2.COLOR_HSV2RGB)
    out = _lookup(out, np.repeat(levels * (1 + rng.uniform(-0.1, 0.1)) + rng.uniform(-0.1, 0.1) * 255, 3, axis=1))
    if rng.random() < 0.5:
        h, w = out.shape[:2]
        factor = int(rng.choice((2, 4)))
        small = cv2.resize(out, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_NEAREST)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha, lightness = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.0)
    kernel = np.full((3, 3), -alpha, np.float32)
    kernel[1, 1] = 1 - alpha + alpha * (8 + lightness)
    return cv2.filter2D(out, -1, kernel)  # uint8 in and out: rounded and clipped


def _lookup(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each channel of a uint8 image through its own column of a 256×3 table (rounded, clipped)."""
    lut = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    return cv2.LUT(image, np.ascontiguousarray(lut[None]))


def _soften(hull: np.ndarray, unit: float, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The hull deformed elastically and blurred twice (the first blur, kept only where saturated,
    rounds its corners; the second makes the soft edge), worked on at WORK_SIDE pixels a face
    unit in a window round the hull: the mask (float32, peak 1) and its window (x0, y0, x1, y1),
    outside which it is zero."""
    left, top, width, height = cv2.boundingRect(hull)
    h, w = hull.shape
    pad = PAD * unit
    x0, y0 = max(0, int(left - pad)), max(0, int(top - pad))
    x1, y1 = min(w, int(np.ceil(left + width + pad))), min(h, int(np.ceil(top + height + pad)))
    scale_x, scale_y = rng.uniform(*WORK_SIDE, size=2) / unit
    size = (max(8, round((x1 - x0) * scale_x)), max(8, round((y1 - y0) * scale_y)))
    work = cv2.resize(hull[y0:y1, x0:x1].astype(np.float32), size, interpolation=cv2.INTER_LINEAR)

    grid_x, grid_y = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
    dx, dy = (np.clip(cv2.GaussianBlur(rng.uniform(-1, 1, work.shape).astype(np.float32), (0, 0), ELASTIC_SIGMA)
                      * ELASTIC_ALPHA, -ELASTIC_MAX, ELASTIC_MAX) for _ in range(2))
    work = cv2.remap(work, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    # Explicit kernel sides give each blur a finite reach, so the mask is exactly zero away from the face.
    k1, k2 = (int(rng.integers(BLUR_KERNELS[0] // 2, BLUR_KERNELS[1] // 2 + 1)) * 2 + 1 for _ in range(2))
    k1 = min(k1, _widest_kernel(work > 0.5))  # so that no part (an eye, the nose) vanishes
    core = cv2.GaussianBlur(work, (k1, k1), 0)
    core = (core >= core.max() * (1 - 1e-3)).astype(np.float32) if core.max() > 0 else work
    soft = cv2.GaussianBlur(core, (k2, k2), float(rng.uniform(5, 46)))
    soft = cv2.resize(soft, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return soft / max(float(soft.max()), 1e-6), (x0, y0, x1, y1)


def _widest_kernel(mask: np.ndarray) -> int:
    """The largest odd kernel side whose square fits inside every part of a binary mask: blurred
    with it, each part still reaches full strength somewhere."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8))
    if count < 2:
        return 1
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    thinnest = min(float(inside[labels == label].max()) for label in range(1, count))
    return max(1, (int(np.sqrt(2) * thinnest) - 1) // 2 * 2 + 1)


def self_blend(image: np.ndarray, mesh: np.ndarray, rng: np.random.Generator) -> SelfBlend:
    """A self-blend of the face in `image` (RGB uint8, the face's own resolution) whose 468-point
    mesh is `mesh` (x, y in its pixels)."""
    unit = face_unit(mesh)
    source, target = (transform(image, rng), image) if rng.random() < 0.5 else (image, transform(image, rng))
    # The source moves by a random scale and shift, and its mask with it: the hull of the moved mesh.
    centre = (mesh.min(0) + mesh.max(0)) / 2
    affine = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, float(rng.uniform(*SCALE)))
    affine[:, 2] += rng.uniform(-1, 1, size=2) * np.array(SHIFT) * unit
    hull = hull_mask(image.shape[:2], cv2.transform(mesh[None].astype(np.float64), affine)[0], rng)
    soft, (x0, y0, x1, y1) = _soften(hull, unit, rng)
    soft *= np.float32(rng.choice(BLEND_RATIOS))

    # Blend only in the mask's window: it is zero elsewhere, and there the fake is the real.
    window = affine.copy()
    window[:, 2] -= (x0, y0)
    moved = cv2.warpAffine(source, window, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    fake = np.array(target, copy=True)
    real = target[y0:y1, x0:x1].astype(np.float32)
    fake[y0:y1, x0:x1] = np.clip(np.rint(real + soft[..., None] * (moved.astype(np.float32) - real)), 0, 255)
    mask = np.zeros(image.shape[:2], np.float32)
    mask[y0:y1, x0:x1] = soft
    return SelfBlend(np.array(target, copy=True), fake, mask)


def cut(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """`image` cut as the scanner cuts the face whose MTCNN box (in the image's pixels) is `box`."""
    return crop_face(image, Face(0, box, 1.0, np.zeros((5, 2), np.float32)), size).image  # it reads only the box


def crop_blend(blend: SelfBlend, box: tuple[float, float, float, float], size: int) -> BlendCrops:
    """The real, the blend and the mask cut as the scanner cuts the face whose box is `box`."""
    mask = cut(np.repeat(np.rint(blend.mask * 255).astype(np.uint8)[..., None], 3, axis=2), box, size)[..., 0]
    return BlendCrops(cut(blend.real, box, size), cut(blend.fake, box, size), mask.astype(np.float32) / 255)


def sample_grid(sources: list[tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]], path: Path,
                size: int = 224, seed: int = 0) -> None:
    """Write a PNG of rows (real, mask, self-blended), cut the scanner's way, to check blends by eye.

    `sources` are (face region RGB, its 468-point mesh, the MTCNN box), all in the region's pixels;
    a fixed seed makes the grid reproducible."""
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(7.5, 2.5 * len(sources)), dpi=100)
    axes = fig.subplots(len(sources), 3, squeeze=False)
    for row, (region, mesh, box) in zip(axes, sources):
        crops = crop_blend(self_blend(region, mesh, rng), box, size)
        row[0].imshow(crops.real)
        row[1].imshow(crops.mask, cmap="gray", vmin=0, vmax=1)
        row[2].imshow(crops.fake)
        for ax in row:
            ax.set_axis_off()
    for ax, title in zip(axes[0], ("real", "mask", "self-blended")):
        ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
