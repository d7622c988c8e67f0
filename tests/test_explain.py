"""Heat-maps light up where the score comes from: tiny models whose p_fake depends only on the
top-left quadrant of the crop — Grad-CAM for tf_keras models (plain, with a nested backbone, and
with the bundled model's two heads),
occlusion for a SavedModel Keras cannot rebuild."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.scan.evidence import collect, shown_crops
from detector.scan.explain import Explainer
from detector.scan.model import Model

SIZE = 64
GAIN = 8.0  # p_fake = sigmoid(GAIN · (mean of the top-left quadrant in [0,1] − 0.5))


def build_quadrant_keras(folder: Path, form: str) -> Path:
    """Only the top-left quadrant reaches the Conv2D (crop, then zero-pad back), so its output —
    and Grad-CAM's map — is zero elsewhere. `form`: "plain"; "nested" puts the conv in a
    "backbone" sub-model followed by Dropout and the Dense head; "two-heads" follows it, like the
    bundled model, with two Dense heads whose logits are averaged, then a softmax."""
    import tf_keras as keras

    half = SIZE // 2
    image = keras.Input((SIZE, SIZE, 3), name="image")
    body_in = keras.Input((SIZE, SIZE, 3)) if form != "plain" else image
    x = keras.layers.Cropping2D(((0, half), (0, half)))(body_in)
    x = keras.layers.ZeroPadding2D(((0, half), (0, half)))(x)
    conv = keras.layers.Conv2D(1, 1, name="conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(x))
    if form != "plain":
        x = keras.Model(body_in, x, name="backbone")(image)
        x = keras.layers.Dropout(0.2)(x)
    if form == "two-heads":  # softmax of (0, z) is sigmoid(z): the same p_fake as the one-head forms
        heads = [keras.layers.Dense(2, name=name) for name in ("blend", "labelled")]
        out = keras.layers.Softmax(name="p")(keras.layers.Average(name="fused")([head(x) for head in heads]))
        for head in heads:
            head.set_weights([np.array([[0.0, 4 * GAIN]]), np.array([0.0, -GAIN / 2])])
        contract = {"input_size": SIZE}
    else:
        dense = keras.layers.Dense(1, activation="sigmoid", name="p")
        out = dense(x)
        dense.set_weights([np.full((1, 1), 4 * GAIN), np.array([-GAIN / 2])])  # 4×: the pooled mean is a quarter
        contract = {"output": "sigmoid", "input_size": SIZE}
    model = keras.Model(image, out)
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 3), np.zeros(1)])
    model.save(str(folder))
    (folder / "model.json").write_text(json.dumps(contract))
    return folder


def build_quadrant_module(folder: Path) -> Path:
    """The same function as a plain tf.Module: no keras_metadata.pb, so only occlusion applies."""
    from detector.runtime import tf

    class Quadrant(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="image")])
        def serve(self, image):
            mean = tf.reduce_mean(image[:, :SIZE // 2, :SIZE // 2, :], axis=(1, 2, 3))
            return {"p": tf.sigmoid(GAIN * (mean - 0.5))[:, None]}

    module = Quadrant()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    (folder / "model.json").write_text(json.dumps({"output": "sigmoid", "input_size": SIZE}))
    return folder


def crops() -> np.ndarray:
    """Bright textured crops: hiding any part of the top-left quadrant lowers p_fake."""
    rng = np.random.default_rng(0)
    return rng.integers(180, 256, (2, SIZE, SIZE, 3), np.uint8)


def top_left_share(maps: np.ndarray) -> float:
    half = SIZE // 2
    return float(maps[:, :half, :half].sum() / maps.sum())


@pytest.mark.parametrize("form", ["plain", "nested", "two-heads"])
def test_grad_cam_lights_up_the_region_the_model_reads(tmp_path, form):
    model = Model(build_quadrant_keras(tmp_path / "m", form))
    explain = Explainer(model)
    maps = explain(crops())
    assert explain.method == "grad-cam"
    assert maps.shape == (2, SIZE, SIZE) and maps.max() == pytest.approx(1.0)
    assert top_left_share(maps) > 0.95


def test_occlusion_for_a_model_keras_cannot_rebuild(tmp_path):
    model = Model(build_quadrant_module(tmp_path / "m"))
    assert not (model.path / "keras_metadata.pb").exists()
    explain = Explainer(model)
    maps = explain(crops())
    assert explain.method == "occlusion"
    assert maps.shape == (2, SIZE, SIZE) and maps.max() == pytest.approx(1.0)
    assert top_left_share(maps) > 0.8
    peak = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert peak[0] < SIZE // 2 and peak[1] < SIZE // 2


def test_evidence_keeps_the_most_and_least_suspicious_crops_per_track(tmp_path):
    scores = [0.1 * i for i in range(20)] + [0.5, 0.6]
    tracks = [0] * 20 + [1, 1]
    shown = shown_crops(scores, tracks, per_track=4)
    assert shown == [19, 18, 1, 0, 21, 20]
    model = Model(build_quadrant_module(tmp_path / "m"))
    images = list(np.repeat(crops()[:1], len(scores), axis=0))
    evidence = collect(images, np.array(scores), tracks, Explainer(model))
    assert set(evidence.thumbnails) == set(shown_crops(scores, tracks))
    assert list(evidence.heatmaps) == [19, 18, 17] and evidence.method == "occlusion"
    assert all(data[:2] == b"\xff\xd8" for data in [*evidence.thumbnails.values(), *evidence.heatmaps.values()])


def test_the_bundled_model_gets_grad_cam():
    from detector.scan.model import DEFAULT_MODEL_DIR

    explain = Explainer(Model(DEFAULT_MODEL_DIR))
    maps = explain(np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), np.uint8))
    assert explain.method == "grad-cam" and maps.shape == (2, 224, 224) and np.isfinite(maps).all()
