"""Stage 2 — faces: detection where the face really is, full-resolution boxes, square crops, tracks."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import face_clip, ffmpeg
from detector.scan.crop import CROP_MARGIN, crop_face
from detector.scan.faces import Face, FaceDetector
from detector.scan.tracking import link_tracks
from detector.scan.video import probe, sample_frames

# Where the face is in skimage's 512×512 astronaut still (Eileen Collins), x1, y1, x2, y2.
ASTRONAUT_FACE = (180.0, 61.0, 268.0, 172.0)
TOL = 14.0  # pixels of the still: MTCNN boxes wobble a little


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def expected_box(scale: float, dx: float, dy: float) -> np.ndarray:
    return np.array(ASTRONAUT_FACE) * scale + np.array([dx, dy, dx, dy])


def test_finds_the_astronaut_face_where_the_clip_puts_it(clip, detector):
    info = probe(clip)
    frames = list(sample_frames(clip, 6, info))
    found = detector.detect([f.image for f in frames], first_index=10)
    assert len(found) == len(frames)
    # conftest's clip: the still scaled to 0.8·480 = 384 px, at x = 128 + 32·sin(t), y = 48
    scale = 384 / 512
    for frame, faces in zip(frames, found):
        assert len(faces) == 1
        face = faces[0]
        assert face.frame == 10 + frame.index
        assert face.prob >= 0.9
        want = expected_box(scale, 128 + 32 * math.sin(frame.time), 48)
        assert np.abs(np.array(face.box) - want).max() < TOL * scale, (frame.time, face.box, want)
        x1, y1, x2, y2 = face.box
        lm = face.landmarks
        assert lm.shape == (5, 2)
        assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
        assert lm[0, 0] < lm[1, 0] and lm[0, 1] < lm[3, 1]  # eyes left→right, above the mouth


def composite(astronaut: np.ndarray, width: int, height: int, side: int, x: int, y: int) -> np.ndarray:
    frame = np.full((height, width, 3), 128, np.uint8)
    frame[y:y + side, x:x + side] = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    return frame


def test_boxes_are_in_full_resolution_pixels(astronaut, detector):
    big = composite(astronaut, 1920, 1080, 800, 560, 140)
    small = cv2.resize(big, (960, 540), interpolation=cv2.INTER_AREA)
    (face_big,), = detector.detect([big])
    (face_small,), = detector.detect([small])
    assert np.abs(np.array(face_big.box) - 2 * np.array(face_small.box)).max() < 4
    assert np.abs(face_big.landmarks - 2 * face_small.landmarks).max() < 4
    want = expected_box(800 / 512, 560, 140)
    assert np.abs(np.array(face_big.box) - want).max() < TOL * 800 / 512
    # detecting at full resolution agrees with detecting downscaled and mapping back
    (face_full,), = FaceDetector("cpu", detect_side=1920).detect([big])
    assert np.abs(np.array(face_full.box) - np.array(face_big.box)).max() < 12


def test_no_faces_in_blank_or_tiny_frames(detector):
    assert detector.detect([]) == []
    assert detector.detect([np.full((240, 320, 3), 128, np.uint8)] * 2) == [[], []]
    assert detector.detect([np.zeros((16, 16, 3), np.uint8)]) == [[]]
    assert detector.detect([np.zeros((8, 4000, 3), np.uint8)]) == [[]]


def face(box, frame=0, landmarks=None) -> Face:
    lm = np.zeros((5, 2), np.float32) if landmarks is None else np.asarray(landmarks, np.float32)
    return Face(frame, tuple(float(v) for v in box), 0.99, lm)


def test_crop_is_square_and_the_face_region_unchanged():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3), np.uint8)
    f = face((150, 100, 190, 180), landmarks=[[160, 120], [180, 120], [170, 140], [160, 160], [180, 160]])
    side = 80 * (1 + CROP_MARGIN)  # the longer side (height) plus the margin: 104
    crop = crop_face(image, f, 104)
    assert crop.image.shape == (104, 104, 3) and crop.image.dtype == np.uint8
    left, top = round(170 - side / 2), round(140 - side / 2)
    assert np.array_equal(crop.image, image[top:top + 104, left:left + 104])  # not stretched, not shifted
    assert np.allclose(crop.landmarks, np.array(f.landmarks) - [left, top])
    assert crop.face is f
    # resized: the same square, scaled
    half = crop_face(image, f, 52)
    assert half.image.shape == (52, 52, 3)
    want = cv2.resize(image[top:top + 104, left:left + 104], (52, 52), interpolation=cv2.INTER_AREA)
    assert np.abs(half.image.astype(int) - want).max() <= 1
    assert np.allclose(half.landmarks, (np.array(f.landmarks) - [left, top]) / 2)


def test_crop_pads_with_black_past_the_frame_edges():
    image = np.full((100, 120, 3), 200, np.uint8)
    f = face((0, 0, 40, 40), landmarks=[[10, 10], [30, 10], [20, 20], [10, 30], [30, 30]])
    crop = crop_face(image, f, 52)  # side 52 centred on (20, 20): 6 px past the left and top edges
    assert crop.image.shape == (52, 52, 3)
    assert crop.image[:6].max() == 0 and crop.image[:, :6].max() == 0
    assert crop.image[6:, 6:].min() == 200
    assert np.allclose(crop.landmarks[2], [26, 26])
    # bottom-right corner: padding on the right and bottom
    g = face((90, 70, 120, 100))
    corner = crop_face(image, g, 39)  # side 39 centred on (105, 85): x 86..124, y 66..104
    assert corner.image[:, -5:].max() == 0 and corner.image[-5:].max() == 0
    assert corner.image[:-5, :-5].min() == 200
    # a box entirely outside the frame still gives a (black) crop, not an error
    outside = crop_face(image, face((500, 500, 540, 540)), 32)
    assert outside.image.shape == (32, 32, 3) and outside.image.max() == 0


def test_link_tracks_keeps_people_apart():
    left = [face((10 + i, 10, 60 + i, 70), frame=i) for i in range(5)]
    right = [face((200 - i, 10, 250 - i, 70), frame=i) for i in range(5)]
    faces = sorted(left + right, key=lambda f: (f.frame, -f.box[0]))  # order within a frame does not matter
    ids = link_tracks(faces)
    assert len(set(ids)) == 2
    by_side = {id_ for f, id_ in zip(faces, ids) if f.box[0] < 100}
    assert len(by_side) == 1
    for frame in range(5):  # never two faces of one frame in one track
        frame_ids = [i for f, i in zip(faces, ids) if f.frame == frame]
        assert len(frame_ids) == len(set(frame_ids))
    # a face that jumps across the frame is somebody else; a gap in frames does not break a track
    jumpy = [face((10, 10, 60, 70), 0), face((12, 10, 62, 70), 3), face((300, 200, 350, 260), 4)]
    assert link_tracks(jumpy) == [0, 0, 1]
    assert link_tracks([]) == []


def test_two_astronauts_side_by_side_are_two_tracks(media, detector):
    single = face_clip(media / "faces_single.mp4", seconds=1.0)
    double = media / "faces_double.mp4"
    ffmpeg("-i", str(single), "-filter_complex", "[0:v]split[a][b];[b]hflip[c];[a][c]hstack", "-c:v", "libx264",
           "-preset", "ultrafast", str(double))
    info = probe(double)
    assert (info.width, info.height) == (1280, 480)
    frames = list(sample_frames(double, 5, info))
    found = detector.detect([f.image for f in frames])
    faces = [f for per_frame in found for f in per_frame]
    assert all(len(per_frame) == 2 for per_frame in found)
    ids = link_tracks(faces)
    assert len(set(ids)) == 2
    for track in set(ids):
        centres = [(f.box[0] + f.box[2]) / 2 for f, i in zip(faces, ids) if i == track]
        assert len(centres) == 5
        assert all(c < 640 for c in centres) or all(c > 640 for c in centres)
