"""Shared fixtures: generated clips (ffmpeg from a public-domain still) and tiny SavedModels.

Everything is made in temporary folders by the tests themselves: no network, no shared data.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import torch  # noqa: F401  — torch and torchvision before tensorflow, as detector.runtime imports them
import torchvision  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The suite tests the pinned ffmpeg (imageio-ffmpeg's), as the scanner runs by default, whatever
# ffmpeg is on PATH or named by the environment; the fixtures (synthetic) run the same one.
os.environ.pop("DETECTOR_FFMPEG", None)

from synthetic import astronaut_png, face_clip, ffmpeg  # noqa: E402,F401

# Tests that use these fixtures are slow: they train (trained), start Ray (cluster, ray_scanner) or
# scan a batch holding an 8K clip (batch, the CLI's hostile corpus).
SLOW_FIXTURES = {"trained", "cluster", "ray_scanner", "batch"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


BRIGHTNESS_GAIN = 10.0  # the test model's p_fake = sigmoid(gain · (mean pixel in [0,1] − 0.5))


def build_brightness_model(folder: Path, sigmoid: bool = False, input_range=(0.0, 1.0), size: int = 224,
                           contract: dict | None = None) -> Path:
    """A SavedModel in the original model's format (tf_keras, keras_metadata.pb, named input) whose
    p_fake is a known function of the mean pixel value, so tests can check crops, scaling and verdicts."""
    import json

    import tf_keras as keras

    scale = 1.0 / (input_range[1] - input_range[0])
    inputs = keras.Input((size, size, 3), name="image")
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    units = 1 if sigmoid else 2
    dense = keras.layers.Dense(units, activation="sigmoid" if sigmoid else "softmax")
    outputs = dense(mean)
    model = keras.Model(inputs, outputs)
    g = BRIGHTNESS_GAIN
    if sigmoid:
        dense.set_weights([np.full((3, 1), g * scale / 3), np.array([-g * (0.5 + input_range[0] * scale)])])
    else:
        weights = np.zeros((3, 2))
        weights[:, 1] = g * scale / 3
        dense.set_weights([weights, np.array([0.0, -g * (0.5 + input_range[0] * scale)])])
    model.save(str(folder))
    if contract is not None:
        (folder / "model.json").write_text(json.dumps(contract))
    return folder


def expected_p_fake(crop: np.ndarray) -> float:
    mean = crop.astype(np.float64).mean() / 255.0
    return float(1.0 / (1.0 + np.exp(-BRIGHTNESS_GAIN * (mean - 0.5))))


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Models converted for ONNX Runtime are cached for this session only, never in ~/.cache
    (also for the command lines the tests run, which inherit the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("model_cache")
        patch.setenv("DETECTOR_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def brightness_model(tmp_path_factory) -> Path:
    return build_brightness_model(tmp_path_factory.mktemp("models") / "brightness")


@pytest.fixture(scope="session")
def clip(media) -> Path:
    return face_clip(media / "face.mp4")


@pytest.fixture(scope="session")
def noface_clip(media) -> Path:
    path = media / "testsrc.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=2", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.fixture(scope="session")
def astronaut_face():
    """The astronaut photo, its MTCNN face, that face's source region (as the crop builder cuts it)
    and the face mesh in both: (image, face, region, region_face, region_mesh, image_mesh)."""
    import skimage.data

    from detector.scan.faces import FaceDetector
    from detector.data.crops import source_region
    from detector.data.landmarks import FaceMesh

    image = skimage.data.astronaut()
    face = FaceDetector().detect([image])[0][0]
    region, region_face = source_region(image, face)
    mesh = FaceMesh()
    return (image, face, region, region_face, mesh(region, region_face.box, region_face.landmarks),
            mesh(image, face.box, face.landmarks))
