"""Self-blended images as the paper makes them, on a real face (skimage's astronaut) and its face mesh:
the mask's support, the blend inside it and nothing changed outside it, the blend at the face's own
resolution cut the scanner's way, the paper's transforms, and each fake trained beside its own real."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.scan.crop import crop_face
from detector.data.landmarks import NOSE
from detector.training.selfblend import (
    MASK_REACH, crop_blend, face_unit, hull_mask, sample_grid, self_blend, transform,
)

N_DRAWS = 40  # random draws per property: covers the four hull shapes and both transform sides


def _reach(mesh: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where a mask may be non-zero: the mesh's convex hull grown by MASK_REACH face units."""
    hull = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(mesh).astype(np.int32)), 1)
    radius = int(np.ceil(MASK_REACH * face_unit(mesh)))
    return cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)).astype(bool)


def test_the_mesh_outlines_the_face(astronaut_face):
    image, face, _, _, _, mesh = astronaut_face
    assert mesh.shape == (468, 2)
    x1, y1, x2, y2 = face.box
    inside = (mesh[:, 0] > x1 - 0.2 * face.side) & (mesh[:, 0] < x2 + 0.2 * face.side) & \
             (mesh[:, 1] > y1 - 0.3 * face.side) & (mesh[:, 1] < y2 + 0.2 * face.side)
    assert inside.all()


def test_a_mesh_is_trusted_only_on_a_face_where_mtcnn_found_it(astronaut_face):
    """No face (a flat picture), or MTCNN's points somewhere else than the mesh's: no mesh."""
    from detector.data.landmarks import FaceMesh, five_points

    image, face, _, _, _, mesh = astronaut_face
    np.testing.assert_allclose(five_points(mesh), face.landmarks, atol=0.35 * (face.landmarks[1, 0] - face.landmarks[0, 0]))
    meshes = FaceMesh()
    assert meshes(np.full_like(image, 128), face.box, face.landmarks) is None
    eye_distance = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    elsewhere = face.landmarks + np.array([0.0, 0.8 * eye_distance], np.float32)  # all five a long way down
    assert meshes(image, face.box, elsewhere) is None


def test_mask_support_stays_near_the_landmark_hull(astronaut_face):
    """In the full 512² photo, where the face is small: the mask is zero farther than MASK_REACH
    face units from the mesh's hull, blends at least at the weakest ratio, and covers the middle of the nose."""
    image, _, _, _, _, mesh = astronaut_face
    allowed = _reach(mesh, image.shape[:2])
    assert allowed.mean() < 0.15, "the bound must leave most of the photo out to mean anything"
    rng = np.random.default_rng(0)
    shapes = set()
    for _ in range(N_DRAWS):
        blend = self_blend(image, mesh, rng)
        mask = blend.mask
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and 0.25 - 1e-6 <= mask.max() <= 1.0
        assert not mask[~allowed].any(), "mask leaks beyond the landmark hull"
        nx, ny = np.round(mesh[list(NOSE)].mean(0)).astype(int)  # inside every hull shape
        assert mask[ny, nx] > 0
        shapes.add(int((mask > 0).sum()) // 1000)
    assert len(shapes) > 5, "the hull shape, deformation and blur vary from draw to draw"


def test_hull_shapes_come_from_the_mesh(astronaut_face):
    image, _, _, _, _, mesh = astronaut_face
    full = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(full, cv2.convexHull(np.round(mesh).astype(np.int32)), 1)
    rng = np.random.default_rng(1)
    areas = set()
    for _ in range(N_DRAWS):
        hull = hull_mask(image.shape[:2], mesh, rng)
        assert hull.dtype == np.uint8 and hull.any()
        assert not (hull & (1 - full)).any(), "every hull shape lies inside the whole face's hull"
        areas.add(int(hull.sum()))
    assert len(areas) == 4  # whole face, no forehead, inner face, its parts apart


@pytest.mark.parametrize("where", ["region", "photo"])
def test_blend_changes_the_masked_face_and_nothing_else(where, astronaut_face):
    """The fake equals its real wherever the mask is zero, and differs where the mask blends."""
    image, _, region, _, region_mesh, image_mesh = astronaut_face
    image, mesh = (region, region_mesh) if where == "region" else (image, image_mesh)
    rng = np.random.default_rng(2)
    for _ in range(N_DRAWS):
        blend = self_blend(image, mesh, rng)
        assert blend.fake.shape == blend.real.shape == image.shape and blend.fake.dtype == np.uint8
        outside = blend.mask == 0
        np.testing.assert_array_equal(blend.fake[outside], blend.real[outside])
        diff = np.abs(blend.fake.astype(int) - blend.real.astype(int)).max(axis=2)
        assert (diff[blend.mask >= 0.5 * blend.mask.max()] > 0).mean() > 0.3, "the blend barely changes the face"


def test_real_is_the_input_or_the_input_transformed(astronaut_face):
    """Either the source or the target is transformed: about half of the reals are the input."""
    _, _, region, _, mesh, _ = astronaut_face
    rng = np.random.default_rng(3)
    same = [np.array_equal(self_blend(region, mesh, rng).real, region) for _ in range(N_DRAWS)]
    assert 0.2 < np.mean(same) < 0.8


def test_blend_at_source_resolution_then_cut_the_scanners_way(astronaut_face):
    """The blend is made on the region (larger than the crop) and cut as the scanner cuts: a real
    left untransformed comes out as the scanner's own crop of the photo, and the fake crop differs
    from it only where the cut mask blends."""
    image, face, region, region_face, mesh, _ = astronaut_face
    scanner = crop_face(image, face, 224).image
    assert region.shape[0] > round(face.side * 1.3) and region.shape[0] > 224 * 0.5
    rng = np.random.default_rng(4)
    untouched = 0
    for _ in range(N_DRAWS):
        blend = self_blend(region, mesh, rng)
        crops = crop_blend(blend, region_face.box, 224)
        assert crops.real.shape == crops.fake.shape == (224, 224, 3) and crops.mask.shape == (224, 224)
        if np.array_equal(blend.real, region):
            untouched += 1
            np.testing.assert_array_equal(crops.real, scanner)
        # resampling to 224 mixes neighbours: the crops agree beyond a fringe round the mask
        fringe = cv2.dilate((crops.mask > 0).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        np.testing.assert_array_equal(crops.fake[~fringe], crops.real[~fringe])
        assert (~fringe).mean() > 0.2 and (np.abs(crops.fake.astype(int) - crops.real.astype(int)).max(axis=2)[crops.mask > 0.5 * crops.mask.max()] > 0).any()
    assert untouched > 0


def test_transform_shifts_colour_and_changes_sharpness(astronaut_face):
    _, _, region, _, _, _ = astronaut_face
    rng = np.random.default_rng(5)

    def sharpness(image):
        return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    base = sharpness(region)
    outs = [transform(region, rng) for _ in range(N_DRAWS)]
    assert all(out.shape == region.shape and out.dtype == np.uint8 for out in outs)
    shifts = [np.abs(out.reshape(-1, 3).mean(0) - region.reshape(-1, 3).mean(0)).max() for out in outs]
    assert max(shifts) > 5 and min(shifts) < max(shifts)
    assert min(map(sharpness, outs)) < 0.7 * base < 1.4 * base < max(map(sharpness, outs))


def test_deterministic_for_a_seeded_rng_and_the_input_untouched(astronaut_face):
    _, _, region, _, mesh, _ = astronaut_face
    before, mesh_before = region.copy(), mesh.copy()
    a, b = (self_blend(region, mesh, np.random.default_rng(7)) for _ in range(2))
    c = self_blend(region, mesh, np.random.default_rng(8))
    np.testing.assert_array_equal(a.fake, b.fake)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.fake, c.fake)
    np.testing.assert_array_equal(region, before)
    np.testing.assert_array_equal(mesh, mesh_before)


def test_mask_scales_with_the_face(astronaut_face):
    """The same draws on the photo at half size give a mask about a quarter of the area."""
    image, _, _, _, _, mesh = astronaut_face
    small = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    big_mask = self_blend(image, mesh, np.random.default_rng(9)).mask
    small_mask = self_blend(small, mesh / 2, np.random.default_rng(9)).mask
    assert 0.2 < (small_mask > 0).sum() / (big_mask > 0).sum() < 0.3


def test_sample_grid_writes_real_mask_and_blend(astronaut_face, tmp_path: Path):
    _, _, region, region_face, mesh, _ = astronaut_face
    one, three = tmp_path / "one.png", tmp_path / "sub" / "three.png"
    sample_grid([(region, mesh, region_face.box)], one)
    sample_grid([(region, mesh, region_face.box)] * 3, three)
    grid_one, grid_three = cv2.imread(str(one)), cv2.imread(str(three))
    assert grid_one is not None and grid_three is not None
    assert grid_three.shape[0] > 2 * grid_one.shape[0]  # one row per face
    assert grid_one.shape[1] > grid_one.shape[0]  # three columns side by side
    assert grid_three.std() > 10  # not blank


@pytest.fixture(scope="module")
def photo_crops(tmp_path_factory):
    """A crop dataset of three real photos that differ everywhere (the astronaut in three tints)."""
    import skimage.data

    from detector.data import crops
    from detector.data.datasets import LabelledVideo

    folder = tmp_path_factory.mktemp("photos")
    items = []
    for i, tint in enumerate(((1.0, 1.0, 1.0), (0.7, 1.0, 1.2), (1.2, 0.8, 0.7))):
        path = folder / f"astronaut{i}.png"
        photo = np.clip(skimage.data.astronaut() * np.array(tint), 0, 255).astype(np.uint8)
        cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        items.append(LabelledVideo(path, 0, "photos", "real", (f"p{i}",)))
    crops.build(items, folder / "crops", frames=1, crop_size=96, progress=False)
    return crops.read_index(folder / "crops")


@pytest.mark.parametrize("augmented", [False, True])
def test_each_self_blend_trains_beside_its_own_real(photo_crops, augmented):
    """Fake i of a batch was made from real i of the same batch: they agree far from the face
    (corners), with the same augmentation drawn for both, and differ in the face; a fake never
    agrees with another photo's real."""
    from detector.training.augment import AugmentConfig
    from detector.training.batches import CropSampler

    assert all(r.mesh is not None and r.region is not None for r in photo_crops)
    # every op but those that read the picture itself (contrast about its mean, cutout's fill, JPEG's blocks)
    off = dict.fromkeys(("crop_p", "flip_p", "colour_p", "blur_p", "downscale_p", "noise_p", "cutout_p", "jpeg_p"), 0.0)
    augmentation = AugmentConfig(**{**off, "crop_p": 1.0, "flip_p": 0.5, "blur_p": 0.5,
                                    "downscale_p": 0.5, "noise_p": 0.5}) if augmented else AugmentConfig(**off)
    sampler = CropSampler(photo_crops, batch_size=12, sbi="only", seed=0, h264_p=0.0, augmentation=augmentation)
    for step in range(3):
        batch = sampler.batch(step)
        x, labels = batch.x.astype(np.float32) / 255, batch.y
        n = len(x) // 2
        assert list(labels) == [0] * n + [1] * n
        corners = np.concatenate([x[:, -8:, :8], x[:, -8:, -8:]], axis=2).reshape(len(x), -1)
        for i in range(n):
            np.testing.assert_array_equal(corners[n + i], corners[i])
            assert not np.array_equal(x[n + i], x[i])
            others = [j for j in range(n) if np.abs(corners[j] - corners[i]).max() > 0.05]
            assert all(not np.array_equal(corners[n + i], corners[j]) for j in others)


def test_sampler_without_meshes_says_how_to_get_them(photo_crops):
    """Crops built before source regions (or whose faces gave no mesh) cannot make self-blends."""
    import dataclasses

    from detector.training.batches import CropSampler

    bare = [dataclasses.replace(r, region=None, region_box=None, mesh=None) for r in photo_crops]
    with pytest.raises(ValueError, match="source regions and face meshes"):
        CropSampler(bare, batch_size=4, sbi="mix", seed=0, h264_p=0.0)
    with pytest.raises(ValueError, match="even"):
        CropSampler(photo_crops, batch_size=5, sbi="mix", seed=0, h264_p=0.0)
    with pytest.raises(ValueError, match="labelled fake"):  # photos alone have no labelled fakes for a second head
        CropSampler(photo_crops, batch_size=8, sbi="heads", seed=0, h264_p=0.0, labelled_share=0.25)
