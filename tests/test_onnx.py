"""The classifier in ONNX Runtime: converted once per model into the cache, used only where it
scores like TensorFlow (1e-4), and every way it can fail falls back to TensorFlow (or, asked for
by name, a ModelError). Every test keeps its cache in a temporary folder, never in ~/.cache."""
from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import ROOT
from detector.scan import onnx as onnx_module
from detector.scan.model import Model, ModelError
from detector.scan.onnx import ONNX_OPSET
from detector.scan.scanner import Settings

TOL = 1e-4


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DETECTOR_CACHE", str(folder))
    return folder


@pytest.fixture
def conversions(monkeypatch) -> list[str]:
    """Counts the tf2onnx conversions (one entry per conversion, the input name)."""
    made: list[str] = []
    convert = onnx_module.convert

    def counting(signature, input_name: str) -> bytes:
        made.append(input_name)
        return convert(signature, input_name)

    monkeypatch.setattr(onnx_module, "convert", counting)
    return made


@pytest.fixture(scope="module")
def lite0_model(tmp_path_factory) -> Path:
    """A real conv net: EfficientNet-Lite0 at 64 px, exported the way the trainer exports models. Its
    batch-norm layers get random scales and shifts and the statistics of a batch of crops (as after
    training): with the freshly initialised ones the signal dies and every crop scores the same."""
    from detector.runtime import keras
    from detector.training.networks import build_detector
    from detector.training.train import export

    rng = np.random.default_rng(5)
    network = build_detector("efficientnet-lite0", input_size=64)
    norms = [layer for layer in network.submodules if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape), mean, var])
        layer.momentum = 0.0  # one training-mode pass sets the moving statistics to the batch's
    network(blob_crops(64, n=64, seed=1).astype(np.float32) / 255, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return export(network, tmp_path_factory.mktemp("lite0") / "model", threshold=0.5, card={})


def random_crops(size: int, n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)


def blob_crops(size: int, n: int = 24, seed: int = 0) -> np.ndarray:
    """Crops of smooth coloured blocks at random contrasts: unlike pixel noise, a conv net tells them apart."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((n, 8, 8, 3)) * rng.uniform(0.2, 1.0, (n, 1, 1, 1))
    return (np.kron(blocks, np.ones((1, size // 8, size // 8, 1))) * 255).astype(np.uint8)


def cache_file(cache: Path, model: Model) -> Path:
    return cache / f"{model.fingerprint}-opset{ONNX_OPSET}.onnx"


def test_brightness_model_scores_like_tensorflow(brightness_model, cache):
    onnx, tf = Model(brightness_model, runtime="onnx"), Model(brightness_model, runtime="tensorflow")
    assert (onnx.runtime, tf.runtime) == ("onnx", "tensorflow")
    crops = random_crops(224)
    crops[:8] //= 3  # darker ones too: p(fake) away from 0.5
    assert np.abs(onnx.predict(crops, batch_size=7) - tf.predict(crops)).max() <= TOL
    assert onnx.describe()["runtime"] == "onnx" and tf.describe()["runtime"] == "tensorflow"
    assert Settings().key(onnx) == Settings().key(tf)  # the resume key does not depend on the runtime


def test_real_conv_net_scores_like_tensorflow(lite0_model, conversions):
    onnx = Model(lite0_model)  # auto, on the CPU
    assert onnx.runtime == "onnx" and len(conversions) == 1
    crops = np.concatenate([blob_crops(64, n=32), random_crops(64, n=8)])
    p_tf = Model(lite0_model, runtime="tensorflow").predict(crops)
    assert p_tf.std() > 1e-3  # the check means something: the crops get different scores
    assert np.abs(onnx.predict(crops) - p_tf).max() <= TOL


def test_converted_once_then_loaded_from_the_cache(brightness_model, cache, conversions):
    first = Model(brightness_model)
    cached = cache_file(cache, first)
    assert first.runtime == "onnx" and cached.is_file() and len(conversions) == 1
    stamp = cached.stat().st_mtime_ns
    second = Model(brightness_model)
    assert second.runtime == "onnx" and len(conversions) == 1  # no second conversion
    assert cached.stat().st_mtime_ns == stamp and [p.name for p in cache.iterdir()] == [cached.name]  # no temp left


def test_a_cached_model_loads_without_tensorflow(brightness_model, cache):
    """The cache file carries TensorFlow's check scores, so a later process never imports TensorFlow
    (about 0.6 GB and seconds of start-up) and still scores as TensorFlow does."""
    crops = random_crops(224, n=6)
    expected = Model(brightness_model, runtime="tensorflow").predict(crops)
    Model(brightness_model)  # converts and caches
    np.save(cache / "crops.npy", crops)
    script = ("import sys, numpy as np; from detector.scan.model import Model; "
              f"m = Model({str(brightness_model)!r}); p = m.predict(np.load({str(cache / 'crops.npy')!r})); "
              "print(m.runtime, 'tensorflow' in sys.modules, *p)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DETECTOR_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    runtime, imported, *scores = out.stdout.split()
    assert (runtime, imported) == ("onnx", "False")
    assert np.abs(np.array(scores, np.float32) - expected).max() <= TOL


def test_a_cache_file_without_tensorflows_scores_is_converted_again(brightness_model, cache, conversions):
    """A file cached by an older version (no check scores in it) is replaced by one that has them."""
    cached = cache_file(cache, Model(brightness_model))
    proto = onnx.load(str(cached))
    del proto.metadata_props[:]
    onnx.save(proto, str(cached))
    assert Model(brightness_model).runtime == "onnx" and len(conversions) == 2
    keys = {entry.key for entry in onnx.load(str(cached)).metadata_props}
    assert {onnx_module.REFERENCE_KEY, onnx_module.OUTPUT_KEY} <= keys


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_a_corrupt_cache_file_is_converted_again(brightness_model, cache, conversions, damage):
    cached = cache_file(cache, Model(brightness_model))
    data = cached.read_bytes()
    cached.write_bytes(b"not an onnx model" if damage == "garbage" else data[:len(data) // 2])
    model = Model(brightness_model)
    assert model.runtime == "onnx" and len(conversions) == 2
    # replaced by a whole model (not byte for byte the old one: tf2onnx numbers unknown dimensions per process)
    onnx.checker.check_model(onnx.load(str(cached)))
    crops = random_crops(224, n=4)
    assert np.abs(model.predict(crops) - Model(brightness_model, runtime="tensorflow").predict(crops)).max() <= TOL


def test_tensorflow_runtime_never_converts(brightness_model, cache, conversions):
    model = Model(brightness_model, runtime="tensorflow")
    assert model.runtime == "tensorflow" and conversions == [] and not cache.exists()


def test_missing_onnxruntime_falls_back_under_auto_and_fails_under_onnx(brightness_model, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    with caplog.at_level(logging.INFO, logger="detector"):
        assert Model(brightness_model).runtime == "tensorflow"
    assert "onnxruntime is not installed" in caplog.text
    with pytest.raises(ModelError, match="onnxruntime is not installed"):
        Model(brightness_model, runtime="onnx")


def test_missing_tf2onnx_without_a_cached_model(brightness_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert Model(brightness_model).runtime == "tensorflow"
    with pytest.raises(ModelError, match="tf2onnx is not installed"):
        Model(brightness_model, runtime="onnx")


def test_a_failed_conversion_is_one_warning_line_and_tensorflow(brightness_model, monkeypatch, caplog):
    import tf2onnx.convert

    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported ops: Counter({'MyCustomOp': 1})\nmore detail")

    monkeypatch.setattr(tf2onnx.convert, "from_function", unsupported)
    with caplog.at_level(logging.WARNING, logger="detector"):
        model = Model(brightness_model)
    assert model.runtime == "tensorflow"
    warning, = [r.getMessage() for r in caplog.records if r.name == "detector" and r.levelno == logging.WARNING]
    assert "MyCustomOp" in warning and "\n" not in warning
    with pytest.raises(ModelError, match="tf2onnx cannot convert"):
        Model(brightness_model, runtime="onnx")


def test_a_failed_conversion_is_not_tried_again_until_asked_or_the_packages_change(
        brightness_model, cache, conversions, monkeypatch, caplog):
    monkeypatch.setattr(onnx_module, "ONNX_TOLERANCE", -1.0)  # every conversion fails its check
    assert Model(brightness_model).runtime == "tensorflow" and len(conversions) == 1
    with caplog.at_level(logging.WARNING, logger="detector"):
        assert Model(brightness_model).runtime == "tensorflow"
    assert len(conversions) == 1  # the second load did not convert again, and says why
    assert "differs from TensorFlow" in caplog.text and "found earlier" in caplog.text
    with pytest.raises(ModelError, match="differs from TensorFlow"):
        Model(brightness_model, runtime="onnx")  # asked for by name: tried again
    assert len(conversions) == 2
    upgraded = {**onnx_module.converter_versions(), "tf2onnx": "99.0"}
    monkeypatch.setattr(onnx_module, "converter_versions", lambda: upgraded)
    monkeypatch.setattr(onnx_module, "ONNX_TOLERANCE", TOL)  # as if the new tf2onnx converted it well
    assert Model(brightness_model).runtime == "onnx" and len(conversions) == 3  # other packages: tried again
    assert [p.suffix for p in cache.iterdir()] == [".onnx"]  # and the failure record is gone


def test_disagreeing_scores_fall_back_to_tensorflow(brightness_model, monkeypatch, caplog):
    monkeypatch.setattr(onnx_module, "ONNX_TOLERANCE", -1.0)  # no session can pass: as if it disagreed
    with caplog.at_level(logging.WARNING, logger="detector"):
        assert Model(brightness_model).runtime == "tensorflow"
    assert "differs from TensorFlow" in caplog.text
    with pytest.raises(ModelError, match="differs from TensorFlow"):
        Model(brightness_model, runtime="onnx")


def test_an_unwritable_cache_folder_does_not_stop_the_scan(brightness_model, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("DETECTOR_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    with caplog.at_level(logging.WARNING, logger="detector"):
        model = Model(brightness_model)
    assert model.runtime == "onnx"  # converted in memory for this run
    assert "cannot cache the ONNX model" in caplog.text and "DETECTOR_CACHE" in caplog.text
    assert model.predict(random_crops(224, n=2)).shape == (2,)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DETECTOR_CACHE", str(tmp_path / "d"))
    assert onnx_module.onnx_cache_folder() == tmp_path / "d"
    monkeypatch.delenv("DETECTOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert onnx_module.onnx_cache_folder() == tmp_path / "x" / "deepfake-detector"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_module.onnx_cache_folder() == tmp_path / "home" / ".cache" / "deepfake-detector"


def test_unknown_runtime_is_refused(brightness_model):
    with pytest.raises(ValueError, match="runtime"):
        Model(brightness_model, runtime="tflite")


def test_cli_runtime_flag_end_to_end(clip, lite0_model, tmp_path, cache):
    """--runtime onnx and --runtime tensorflow (TensorFlow and torch) on the same clip: the JSON says which ran, the scores
    agree, and the settings (the resume key) are the same, so switching runtime rescans nothing.

    A real conv net, not the brightness model: on face crops TensorFlow's float32 mean of 224·224
    pixels is off by up to 2.4e-4 in that model's p(fake) (ONNX Runtime's by 2e-5), which would
    test TensorFlow's rounding, not the conversion."""
    runs = {}
    for runtime in ("onnx", "tensorflow"):
        out = tmp_path / runtime
        proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--input", str(clip), "--output", str(out),
                               "--model", str(lite0_model), "--frames", "4", "--runtime", runtime, "-v",
                               "--no-report"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "DETECTOR_CACHE": str(cache)})
        assert proc.returncode == 0, proc.stderr
        assert f"runtime {runtime}" in proc.stderr  # and MTCNN in ONNX Runtime too, or in its own framework
        assert f"MTCNN runs in {'onnx' if runtime == 'onnx' else 'torch'}" in proc.stderr
        with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
            row, = csv.DictReader(handle)
        runs[runtime] = row, json.loads((out / row["details"]).read_text())
    (onnx_row, onnx), (tf_row, tf) = runs["onnx"], runs["tensorflow"]
    assert onnx["model"]["runtime"] == "onnx" and tf["model"]["runtime"] == "tensorflow"
    assert onnx_row["status"] == "ok" and onnx_row["settings"] == tf_row["settings"]
    crop_scores = [[face["p_fake"] for frame in run["frames"] for face in frame["faces"]] for run in (onnx, tf)]
    assert len(crop_scores[0]) == 4 and crop_scores[0] == pytest.approx(crop_scores[1], abs=TOL)
    assert onnx["verdict"]["p_fake"] == pytest.approx(tf["verdict"]["p_fake"], abs=TOL)
    assert len(list(cache.glob("*.onnx"))) == 1 + 3  # the model, and MTCNN's three networks
