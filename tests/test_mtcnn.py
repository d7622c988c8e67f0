"""MTCNN without torch: the numpy cascade is facenet-pytorch's `detect_face` bit for bit given the
same networks, its three networks in ONNX Runtime give torch's boxes, they are converted once and
then load without torch, and every way that fails falls back to torch (or, asked for by name, a
ModelError). Conversions go to a temporary cache folder, never ~/.cache."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT
from detector.scan import mtcnn
from detector.scan import onnx as onnx_module
from detector.scan.faces import MIN_FACE, FaceDetector
from detector.scan.model import ModelError
from detector.scan.video import probe, sample_frames

SIDE = 150


@pytest.fixture
def cache(monkeypatch, tmp_path):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DETECTOR_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def frames(clip) -> np.ndarray:
    """Real decoded frames (conftest's H.264 clip of the astronaut drifting) and composites with two
    faces, one mirrored, and a noise frame: 640×360, as the scanner detects on."""
    import skimage.data

    face = cv2.resize(skimage.data.astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    made = []
    for corners in (((40, 100), (400, 150)), ((230, 20),)):
        frame = np.full((360, 640, 3), 128, np.uint8)
        for i, (x, y) in enumerate(corners):
            frame[y:y + SIDE, x:x + SIDE] = face if i % 2 == 0 else face[:, ::-1]
        made.append(frame)
    made.append(np.random.default_rng(0).integers(0, 256, (360, 640, 3), np.uint8))
    decoded = [cv2.resize(f.image, (640, 360), interpolation=cv2.INTER_AREA) for f in sample_frames(clip, 3, probe(clip))]
    return np.stack(made + decoded)


@pytest.fixture(scope="module")
def torch_nets() -> mtcnn.Nets:
    return mtcnn.torch_nets()


@pytest.fixture(scope="module")
def onnx_nets(tmp_path_factory) -> mtcnn.Nets:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETECTOR_CACHE", str(tmp_path_factory.mktemp("mtcnn_cache")))
        nets = mtcnn.load_nets("cpu", "onnx")
    assert nets.runtime == "onnx"
    return nets


def test_numpy_cascade_is_facenet_pytorchs_bit_for_bit(frames, torch_nets):
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils.detect_face import detect_face

    stock = MTCNN(keep_all=True, min_face_size=MIN_FACE)
    planes = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2), np.float32)).permute(0, 2, 3, 1)
    with torch.no_grad():
        boxes, points = detect_face(planes, MIN_FACE, stock.pnet, stock.rnet, stock.onet, stock.thresholds,
                                    stock.factor, stock.device)
    ours = mtcnn.cascade(frames, MIN_FACE, torch_nets)
    assert [len(found) for found, _ in ours] == [2, 1, 0, 1, 1, 1]
    for (found, landmarks), theirs, their_points in zip(ours, boxes, points):
        assert np.array_equal(found, np.asarray(theirs, np.float32).reshape(-1, 5))
        assert np.array_equal(landmarks, np.asarray(their_points, np.float32).reshape(-1, 5, 2))


def test_onnx_networks_give_torchs_boxes(frames, torch_nets, onnx_nets):
    for (found, landmarks), (theirs, their_points) in zip(mtcnn.cascade(frames, MIN_FACE, onnx_nets),
                                                          mtcnn.cascade(frames, MIN_FACE, torch_nets)):
        assert found.shape == theirs.shape
        assert np.abs(found[:, :4] - theirs[:, :4]).max(initial=0) < 0.01  # pixels of the 640×360 frame
        assert np.abs(found[:, 4] - theirs[:, 4]).max(initial=0) < 1e-4
        assert np.abs(landmarks - their_points).max(initial=0) < 0.01


@pytest.mark.parametrize("seed", range(3))
def test_the_integral_image_is_pytorchs_area_resampling_bit_for_bit(seed):
    from facenet_pytorch.models.utils.detect_face import imresample

    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(20, 400, 2))
    frames = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    tensor = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2), np.float32))
    region = [(width * 0.3, height * 0.2, width * 0.6, height * 0.7)]
    for size in [(int(rng.integers(12, height + 1)), int(rng.integers(12, width + 1))) for _ in range(5)]:
        expected = imresample(tensor, size).numpy()
        assert np.array_equal(mtcnn.AreaPyramid(frames).level(size), expected)
        # only where PNet reads the region: those parts equal, the rest left at zero
        windowed = mtcnn.AreaPyramid(frames, region).level(size)
        mask = np.zeros_like(expected, dtype=bool)
        for y0, y1, x0, x1 in mtcnn.level_windows(region, (width, height), size):
            mask[:, :, y0:y1, x0:x1] = True
        assert np.array_equal(windowed[mask], expected[mask]) and not windowed[~mask].any()
    # the later stages' crops: boxes inside, across the edges and smaller than the crop, and one
    # wholly outside the frame, which gives no crop
    boxes = np.array([[3.7, 5.2, 20.9, 17.0], [-8.0, -3.5, 30.2, 44.0], [width - 9.5, height - 6.0, width + 7.0, height + 12.0],
                      [5.0, 6.0, 11.0, 10.0], [width + 5.0, 2.0, width + 40.0, 30.0]], np.float32)
    images = np.array([1, 0, 1, 0, 1])
    for side in (24, 48):
        crops, kept, kept_images = mtcnn.AreaPyramid(frames).crops(boxes, images, side)
        assert np.array_equal(kept, boxes[:4]) and list(kept_images) == [1, 0, 1, 0]
        for crop, box, image in zip(crops, kept, kept_images):
            x, y, ex, ey = np.trunc(box).astype(int)
            x, y, ex, ey = max(x, 1), max(y, 1), min(ex, width), min(ey, height)
            want = imresample(tensor[image:image + 1, :, y - 1:ey, x - 1:ex], (side, side)).numpy()[0]
            assert np.array_equal(crop, want)


def test_the_detector_runs_in_onnx_and_finds_the_faces(cache, frames):
    detector = FaceDetector("cpu")
    assert detector.runtime == "onnx"
    assert [len(faces) for faces in detector.detect(list(frames))] == [2, 1, 0, 1, 1, 1]


def test_converted_once_then_loaded_without_torch(cache, frames):
    """The cached files carry torch's outputs on the check inputs, so a later process checks them
    and finds faces without importing torch (seconds of start-up, hundreds of MB)."""
    mtcnn.load_nets("cpu")
    cached = sorted(p.name for p in cache.iterdir())
    assert len(cached) == 3 and all(name.startswith("mtcnn-") and name.endswith(".onnx") for name in cached)
    stamps = [p.stat().st_mtime_ns for p in sorted(cache.iterdir())]
    np.save(cache.parent / "frames.npy", frames[:2])
    script = ("import sys, numpy as np; from detector.scan.faces import FaceDetector; d = FaceDetector(); "
              f"found = d.detect(list(np.load({str(cache.parent / 'frames.npy')!r}))); "
              "print(d.runtime, 'torch' in sys.modules, 'torchvision' in sys.modules, *[len(f) for f in found])")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DETECTOR_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "False", "False", "2", "1"]
    assert [p.stat().st_mtime_ns for p in sorted(cache.iterdir())] == stamps  # not converted again


def test_a_failed_check_falls_back_to_torch(cache, frames, monkeypatch, caplog):
    monkeypatch.setattr(onnx_module, "ONNX_TOLERANCE", -1.0)  # no session can pass: as if ONNX Runtime disagreed
    with caplog.at_level(logging.WARNING, logger="detector"):
        detector = FaceDetector("cpu")
    assert detector.runtime == "torch"
    assert "MTCNN runs in torch" in caplog.text and "differs from torch" in caplog.text
    assert [len(faces) for faces in detector.detect(list(frames[:3]))] == [2, 1, 0]
    with pytest.raises(ModelError, match="differs from torch"):
        FaceDetector("cpu", runtime="onnx")


def test_a_corrupt_cache_file_is_converted_again(cache):
    mtcnn.load_nets("cpu")
    pnet, = cache.glob("mtcnn-pnet-*.onnx")
    pnet.write_bytes(b"not an onnx model")
    assert mtcnn.load_nets("cpu").runtime == "onnx"
    assert pnet.read_bytes() != b"not an onnx model"


def test_missing_onnxruntime_falls_back_to_torch(cache, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    with caplog.at_level(logging.INFO, logger="detector"):
        assert mtcnn.load_nets("cpu").runtime == "torch"
    assert "onnxruntime is not installed" in caplog.text
    with pytest.raises(ModelError, match="onnxruntime is not installed"):
        mtcnn.load_nets("cpu", "onnx")


def test_torch_runtime_never_converts(cache):
    assert mtcnn.load_nets("cpu", "torch").runtime == "torch" and not cache.exists()
