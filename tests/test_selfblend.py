"""Tests for self-blended image generation on a real face (skimage's astronaut)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from detector.training.selfblend import MASK_REACH, face_mask, sample_grid, self_blend

SIZE = 224
N_DRAWS = 50  # random draws per property check: covers the mask/transform variants


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """The full 512x512 astronaut with hand-placed MTCNN-style landmarks.

    Used where the face must be small in the frame, so "outside the face"
    is a large, meaningful region.
    """
    # Left eye, right eye, nose, mouth left, mouth right.
    points = np.array([[201.5, 101], [247.5, 102.5], [225, 125], [204, 142.5], [245, 142.5]], dtype=np.float32)
    return skimage.data.astronaut(), points


@pytest.fixture(scope="module")
def face(astronaut) -> tuple[np.ndarray, np.ndarray]:
    """A 224 training-style crop: the face centred with a ~1.35x margin."""
    image, points = astronaut
    x0, y0, side = 150, 45, 150
    crop = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return crop, (points - (x0, y0)) * np.float32(SIZE / side)


def _face_box(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Landmark bounding box padded by MASK_REACH face units, clipped to the image."""
    unit = max(
        np.linalg.norm(landmarks[:2].mean(0) - landmarks[3:].mean(0)),
        np.linalg.norm(landmarks[1] - landmarks[0]),
    )
    pad = MASK_REACH * unit
    x0, y0 = np.floor(landmarks.min(0) - pad).astype(int).clip(0)
    x1, y1 = np.ceil(landmarks.max(0) + pad).astype(int)
    return x0, y0, min(x1, shape[1]), min(y1, shape[0])


def test_face_box_is_a_real_restriction(astronaut):
    """The locality test is only meaningful if the box leaves most of the image out."""
    image, landmarks = astronaut
    x0, y0, x1, y1 = _face_box(landmarks, image.shape[:2])
    assert (x1 - x0) * (y1 - y0) < 0.15 * image.shape[0] * image.shape[1]


def test_mask_range_and_locality(astronaut):
    image, landmarks = astronaut
    shape = image.shape[:2]
    x0, y0, x1, y1 = _face_box(landmarks, shape)
    rng = np.random.default_rng(0)
    for _ in range(N_DRAWS):
        mask = face_mask(shape, landmarks, rng)
        assert mask.shape == shape and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask.max() >= 0.25  # the weakest blend ratio still blends
        outside = mask.copy()
        outside[y0:y1, x0:x1] = 0
        assert not outside.any(), "mask leaks outside the face region"
        # The face centre (nose) is always inside the mask.
        nx, ny = landmarks[2].round().astype(int)
        assert mask[ny, nx] > 0


@pytest.mark.parametrize("sample", ["face", "astronaut"])
def test_blend_changes_only_and_all_of_the_masked_region(sample, request):
    image, landmarks = request.getfixturevalue(sample)
    rng = np.random.default_rng(1)
    for _ in range(N_DRAWS):
        fake, mask = self_blend(image, landmarks, rng)
        assert fake.shape == image.shape and fake.dtype == np.uint8
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        np.testing.assert_array_equal(fake[mask == 0], image[mask == 0])
        diff = np.abs(fake.astype(int) - image.astype(int)).max(axis=2)
        assert (diff[mask >= 0.25] > 0).mean() > 0.3, "blend barely changes the face"


def test_deterministic_for_seeded_rng(face):
    image, landmarks = face
    fake_a, mask_a = self_blend(image, landmarks, np.random.default_rng(7))
    fake_b, mask_b = self_blend(image, landmarks, np.random.default_rng(7))
    fake_c, _ = self_blend(image, landmarks, np.random.default_rng(8))
    np.testing.assert_array_equal(fake_a, fake_b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert not np.array_equal(fake_a, fake_c)


def test_input_is_not_modified(face):
    image, landmarks = face
    before, lm_before = image.copy(), landmarks.copy()
    self_blend(image, landmarks, np.random.default_rng(0))
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(landmarks, lm_before)


def test_mask_scales_with_the_face(face):
    """Landmarks at half scale give a mask about a quarter of the area."""
    _, landmarks = face
    big = face_mask((SIZE, SIZE), landmarks, np.random.default_rng(3))
    small = face_mask((SIZE, SIZE), landmarks / 2, np.random.default_rng(3))
    assert 0.2 < (small > 0).sum() / (big > 0).sum() < 0.3


def test_sample_grid_writes_png(face, tmp_path: Path):
    one, three = tmp_path / "one.png", tmp_path / "sub" / "three.png"
    sample_grid([face], one)
    sample_grid([face] * 3, three)
    grid_one, grid_three = cv2.imread(str(one)), cv2.imread(str(three))
    assert grid_one is not None and grid_three is not None
    assert grid_three.shape[0] > 2 * grid_one.shape[0]  # one row per pair
    assert grid_one.shape[1] > grid_one.shape[0]  # three columns side by side
    assert grid_three.std() > 10  # not blank
