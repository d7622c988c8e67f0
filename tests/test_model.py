"""Stage 3 — model: SavedModel loading, the model.json contract, scaling, and clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import build_brightness_model, expected_p_fake
from detector.scan.model import Model, ModelError
from detector.scan.scanner import Settings

LEVELS = [0, 40, 100, 127, 128, 160, 220, 255]
# TensorFlow averages 224·224 float32 pixels with ~1e-3 relative error, so p can be off by ~1e-3.
TOL = 3e-3


def uniform_crops(size: int = 224) -> np.ndarray:
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in LEVELS])


def formula(values) -> np.ndarray:
    return np.array([expected_p_fake(np.full((2, 2, 3), v, np.uint8)) for v in values])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("contract_models")


@pytest.fixture(scope="module")
def loaded(brightness_model) -> Model:
    return Model(brightness_model)


def variant(models: Path, base: Path, name: str, contract) -> Path:
    """A copy of a model with its own model.json (text, or an object to dump)."""
    path = models / name
    shutil.copytree(base, path)
    (path / "model.json").write_text(contract if isinstance(contract, str) else json.dumps(contract))
    return path


def test_default_contract_and_formula(loaded, brightness_model):
    assert loaded.path == brightness_model.resolve()
    assert loaded.input_size == 224
    assert loaded.contract.input_range == (0.0, 1.0) and loaded.contract.output == "softmax"
    assert loaded.contract.fake_index == 1 and loaded.contract.threshold == 0.5
    p = loaded.predict(uniform_crops())
    assert p.dtype == np.float32 and p.shape == (len(LEVELS),)
    assert p == pytest.approx(formula(LEVELS), abs=TOL)  # uint8 scaled to [0,1] before the model
    assert p[0] < 0.01 and p[-1] > 0.99 and p[2] < 0.3 and p[5] > 0.7


def test_real_crops_and_batching(loaded):
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (37, 224, 224, 3), np.uint8)
    crops[:10] //= 2  # darker: some clearly real, some near 0.5
    want = [expected_p_fake(c) for c in crops]
    assert loaded.predict(crops, batch_size=16) == pytest.approx(want, abs=TOL)
    assert np.allclose(loaded.predict(crops, batch_size=5), loaded.predict(crops, batch_size=64), atol=1e-5)
    assert loaded.predict(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0,)


def test_0_255_model_with_its_contract_gives_the_same_p(models):
    path = build_brightness_model(models / "range255", input_range=(0.0, 255.0), contract={"input_range": [0, 255]})
    model = Model(path)
    assert model.contract.input_range == (0, 255)
    assert model.predict(uniform_crops()) == pytest.approx(formula(LEVELS), abs=TOL)
    # without the contract the same model is fed [0,1] and says something else entirely
    (path / "model.json").unlink()
    assert not np.allclose(Model(path).predict(uniform_crops()), formula(LEVELS), atol=0.05)


def test_minus_one_to_one_contract(models):
    path = build_brightness_model(models / "range11", input_range=(-1.0, 1.0), contract={"input_range": [-1, 1]})
    assert Model(path).predict(uniform_crops()) == pytest.approx(formula(LEVELS), abs=TOL)


def test_sigmoid_contract(models):
    path = build_brightness_model(models / "sigmoid", sigmoid=True, contract={"output": "sigmoid", "threshold": 0.7})
    model = Model(path)
    assert model.contract.output == "sigmoid"
    assert model.predict(uniform_crops()) == pytest.approx(formula(LEVELS), abs=TOL)
    assert Settings().threshold_for(model) == 0.7 and Settings(threshold=0.2).threshold_for(model) == 0.2
    # a one-output model whose contract says softmax is refused when loaded, naming the fix
    (path / "model.json").unlink()
    with pytest.raises(ModelError, match="sigmoid"):
        Model(path)


def test_fake_index_zero(models, brightness_model):
    path = variant(models, brightness_model, "index0", {"fake_index": 0, "threshold": 0.4, "trained_on": "x"})
    model = Model(path)
    assert model.predict(uniform_crops()) == pytest.approx(1 - formula(LEVELS), abs=TOL)
    assert model.contract.threshold == 0.4
    assert model.describe()["contract"]["trained_on"] == "x"  # the data card travels into the results
    assert model.fingerprint != Model(brightness_model).fingerprint  # a new contract is a new model


def test_missing_folder_names_the_path(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path / "nope")):
        Model(tmp_path / "nope")


def test_folder_without_saved_model(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "weights.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match="saved_model.pb") as caught:
        Model(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(caught.value)


def test_corrupt_saved_model(models, brightness_model):
    path = models / "corrupt"
    shutil.copytree(brightness_model, path)
    (path / "saved_model.pb").write_bytes(b"\x00not a protobuf" * 50)
    with pytest.raises(ModelError) as caught:
        Model(path)
    assert str(path) in str(caught.value)


def test_missing_variables(models, brightness_model):
    path = models / "novars"
    shutil.copytree(brightness_model, path)
    shutil.rmtree(path / "variables")
    with pytest.raises(ModelError) as caught:
        Model(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text,words", [
    ("{not json", "not a valid"),
    ("[1, 2]", "JSON object"),
    ('{"output": "relu"}', "softmax"),
    ('{"threshold": 2}', "threshold"),
    ('{"threshold": "high"}', "threshold"),
    ('{"input_range": [0]}', "input_range"),
    ('{"input_range": [1, 0]}', "input_range"),
    ('{"input_size": "big"}', "input_size"),
    ('{"input_size": 299}', "299"),
    ('{"fake_index": 5}', "fake index"),
    ('{"output": "sigmoid"}', "sigmoid"),
    ('{"calibration": {"scale": 2}}', "calibration"),
    ('{"calibration": {"scale": "x", "bias": 0}}', "calibration"),
])
def test_bad_model_json(models, brightness_model, text, words):
    name = "bad_" + "".join(c for c in text if c.isalnum())[:30] + str(abs(hash(text)) % 1000)
    path = variant(models, brightness_model, name, text)
    with pytest.raises(ModelError) as caught:
        Model(path)
    message = str(caught.value)
    assert str(path) in message and words.lower() in message.lower(), message


def test_calibration_in_model_json_maps_the_video_score(models, brightness_model, clip, tmp_path):
    """A calibrated model's p_fake is its calibration applied to the aggregated score (kept as p_raw)."""
    import csv
    import subprocess
    import sys

    from conftest import ROOT
    from detector.scan.aggregation import Calibration

    path = variant(models, brightness_model, "calibrated", {"calibration": {"scale": 2.0, "bias": 0.5}})
    model = Model(path)
    assert model.contract.calibration == Calibration(2.0, 0.5)
    assert model.describe()["contract"]["calibration"] == {"scale": 2.0, "bias": 0.5}
    assert "calibration" not in Model(brightness_model).describe()["contract"]  # none: as before
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "app.py", "--input", str(clip), "--output", str(out), "--model", str(path),
                           "--frames", "4", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (out / "results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    verdict = json.loads((out / row["details"]).read_text())["verdict"]
    assert float(row["p_fake"]) == pytest.approx(Calibration(2.0, 0.5)(verdict["p_raw"]), abs=1e-6)
    assert float(row["p_fake"]) != pytest.approx(verdict["p_raw"], abs=1e-3)
    assert "calibrated to" in verdict["reason"]
