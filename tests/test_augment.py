"""Tests for training augmentation: each op works alone, and probability 0 is a no-op."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import skimage

from detector.training.augment import AugmentConfig, augment, h264_roundtrip

PROBABILITIES = [f.name for f in dataclasses.fields(AugmentConfig) if f.name.endswith("_p")]
ALL_OFF = AugmentConfig(**{name: 0.0 for name in PROBABILITIES})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 224 RGB crop of the astronaut's face: asymmetric, textured, coloured."""
    return cv2.resize(skimage.data.astronaut()[45:195, 150:300], (224, 224), interpolation=cv2.INTER_AREA)


def test_every_op_has_a_probability():
    assert set(PROBABILITIES) == {"crop_p", "flip_p", "colour_p", "blur_p", "downscale_p", "noise_p", "cutout_p",
                                 "jpeg_p"}


def test_probability_zero_is_identity(image):
    out = augment(image, np.random.default_rng(0), ALL_OFF)
    np.testing.assert_array_equal(out, image)
    assert out is not image  # callers may modify the result freely


@pytest.mark.parametrize("op", PROBABILITIES)
def test_each_op_changes_image_and_keeps_format(op, image):
    config = dataclasses.replace(ALL_OFF, **{op: 1.0})
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = augment(image, rng, config)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out.flags.c_contiguous
        assert not np.array_equal(out, image), f"{op} left the image unchanged"


def test_flip_is_a_mirror(image):
    out = augment(image, np.random.default_rng(0), dataclasses.replace(ALL_OFF, flip_p=1.0))
    np.testing.assert_array_equal(out, image[:, ::-1])


def test_cutout_changes_one_rectangle(image):
    out = augment(image, np.random.default_rng(0), dataclasses.replace(ALL_OFF, cutout_p=1.0))
    ys, xs = np.nonzero((out != image).any(axis=2))
    patch = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert (patch == patch[0, 0]).all()  # one flat fill colour
    untouched = np.ones(image.shape[:2], bool)
    untouched[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = False
    np.testing.assert_array_equal(out[untouched], image[untouched])


def test_defaults_deterministic_and_varied(image):
    a = [augment(image, np.random.default_rng(seed)) for seed in range(4)]
    b = [augment(image, np.random.default_rng(seed)) for seed in range(4)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        assert x.shape == image.shape and x.dtype == np.uint8
    assert len({x.tobytes() for x in a}) == 4


def test_input_is_not_modified(image):
    before = image.copy()
    config = AugmentConfig(**{name: 1.0 for name in PROBABILITIES})
    augment(image, np.random.default_rng(0), config)
    np.testing.assert_array_equal(image, before)


def test_non_square_and_odd_sizes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    config = AugmentConfig(**{name: 1.0 for name in PROBABILITIES})
    out = augment(img, rng, config)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_downscale_loses_fine_detail_only(image):
    out = augment(image, np.random.default_rng(0), dataclasses.replace(ALL_OFF, downscale_p=1.0))
    detail = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    assert detail(out) < 0.8 * detail(image)
    assert abs(out.astype(float).mean() - image.astype(float).mean()) < 2  # same picture, softer


@pytest.mark.parametrize("crf", [18, 40])
def test_h264_roundtrip_keeps_order_and_degrades_with_crf(image, crf):
    """Each crop comes back in its place (odd sizes too), more degraded at a higher CRF."""
    batch = np.stack([image[:223, :221], image[:223, :221, ::-1], np.roll(image, 60, axis=0)[:223, :221]])
    out = h264_roundtrip(batch, crf)
    assert out.shape == batch.shape and out.dtype == np.uint8
    errors = [[np.abs(o.astype(int) - b.astype(int)).mean() for b in batch] for o in out]
    assert all(np.argmin(row) == i for i, row in enumerate(errors))  # crop i decodes closest to crop i
    assert 0 < errors[0][0] < (3 if crf == 18 else 12)
    if crf == 40:
        assert errors[0][0] > np.abs(h264_roundtrip(batch, 18)[0].astype(int) - batch[0].astype(int)).mean()
