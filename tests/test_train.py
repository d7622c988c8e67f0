"""Crop dataset → training → export → scanning and evaluation, end to end on generated clips."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, face_clip, ffmpeg
from detector.data import crops
from detector.data.datasets import LabelledVideo


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Two real clips, two 'fakes' (hue-shifted faces) and a photo, each its own identity."""
    folder = tmp_path_factory.mktemp("tiny")
    items = []
    for i in range(2):
        real = face_clip(folder / f"real{i}.mp4", seconds=1.0, size=f"{480 + 32 * i}x360")
        fake = folder / f"fake{i}.mp4"
        ffmpeg("-i", str(real), "-vf", f"hue=h={60 + 30 * i}", "-c:v", "libx264", "-preset", "ultrafast", str(fake))
        items += [LabelledVideo(real, 0, "tiny", "real", (f"r{i}",)), LabelledVideo(fake, 1, "tiny", "Hue", (f"f{i}",))]
    items.append(LabelledVideo(folder / "astronaut.png", 0, "photos", "real", ("astro",)))
    out = folder / "crops"
    assert crops.build(items, out, frames=4, crop_size=64, progress=False) == len(items)
    return folder, items, out


def test_crop_dataset_index_and_resume(tiny_data):
    folder, items, out = tiny_data
    records = crops.read_index(out)
    assert {r.video for r in records} == {str(i.path) for i in items}
    assert {r.label for r in records if "fake" in r.video} == {1}
    for record in records:
        image = record.image()
        assert image.shape == (64, 64, 3)
        assert record.landmarks.shape == (5, 2)
        assert (record.landmarks > 0).all() and (record.landmarks < 64).all()  # eyes, nose, mouth inside the crop
    assert len([r for r in records if r.video.endswith("real0.mp4")]) == 4
    # Real crops keep their source region (larger than the crop's square, at its own resolution),
    # which cut the scanner's way gives back the crop, and the face mesh found on it.
    from detector.scan.crop import crop_face
    from detector.scan.faces import Face

    for record in records:
        if record.label == 1:
            assert record.region is record.region_box is record.mesh is None
            continue
        region = record.region_image()
        face = Face(0, record.region_box, 1.0, np.zeros((5, 2), np.float32))
        assert region.shape[0] > 1.3 * face.side
        assert np.array_equal(crop_face(region, face, 64).image, record.image())
        assert record.mesh is not None and np.load(record.mesh).shape == (468, 2)
    # A second build finds every item done and adds nothing.
    assert crops.build(items, out, frames=4, crop_size=64, progress=False) == 0
    assert len(crops.read_index(out)) == len(records)


def test_crops_match_the_scanner(tiny_data):
    """Training crops are the scanner's crops, pixel for pixel."""
    from detector.scan.faces import FaceDetector
    from detector.scan.scanner import extract_faces

    folder, items, out = tiny_data
    found = extract_faces(items[0].path, FaceDetector(), 4, 64)
    records = [r for r in crops.read_index(out) if r.video == str(items[0].path)]
    assert len(records) == len(found.crops)
    for record, crop in zip(records, found.crops):
        assert np.array_equal(record.image(), crop.image)


@pytest.fixture(scope="module")
def trained(tiny_data):
    folder, items, out = tiny_data
    run = folder / "run"
    cmd = [sys.executable, "-m", "detector", "train", "--crops", str(out), "--out", str(run), "--epochs", "2",
           "--steps-per-epoch", "2", "--batch-size", "4", "--input-size", "64", "--warmup-steps", "1",
           "--val-fraction", "0.5", "--seed", "3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, cmd


def test_training_writes_log_split_and_exports_original_format(trained):
    run, _ = trained
    with (run / "log.csv").open() as handle:
        log = list(csv.DictReader(handle))
    assert [row["epoch"] for row in log] == ["1", "2"]
    assert float(log[0]["crops_per_second"]) > 0
    for name in ("curves.png", "self_blend_samples.png", "split.csv", "best.weights.h5"):
        assert (run / name).stat().st_size > 0
    with (run / "split.csv").open() as handle:
        split = list(csv.DictReader(handle))
    sides = {row["identities"]: row["split"] for row in split}
    assert "val" in sides.values() and sides["astro"] == "train"  # photos only train
    model_dir = run / "model"
    for name in ("saved_model.pb", "keras_metadata.pb", "variables/variables.index", "model.json"):
        assert (model_dir / name).exists(), name
    card = json.loads((model_dir / "model.json").read_text())
    assert (card["input_size"], card["input_range"], card["output"], card["fake_index"]) == (64, [0.0, 1.0], "softmax", 1)
    assert card["split"]["by"] == "source identity" and "command" in card and "validation" in card
    assert not list(model_dir.rglob("*optimizer*"))


def test_exported_model_loads_both_ways_and_scores(trained, tiny_data):
    import tensorflow as tf
    import tf_keras

    from detector.scan.model import Model

    run, _ = trained
    loaded = tf_keras.models.load_model(str(run / "model"), compile=False)
    assert loaded.input_shape == (None, 64, 64, 3)
    signature = tf.saved_model.load(str(run / "model")).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["image"]
    model = Model(run / "model")
    crop = crops.read_index(tiny_data[2])[0].image()
    p = model.predict(crop[None])
    expected = loaded(crop[None].astype(np.float32) / 255.0, training=False).numpy()[0, 1]
    assert p.shape == (1,) and abs(p[0] - expected) < 1e-5


def test_scanner_and_evaluator_use_the_trained_model(trained, tiny_data):
    run, _ = trained
    folder, items, _ = tiny_data
    out = folder / "scan"
    proc = subprocess.run([sys.executable, "app.py", "--input", str(items[0].path), "--output", str(out),
                           "--model", str(run / "model"), "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (out / "results.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert row["status"] == "ok" and 0.0 <= float(row["p_fake"]) <= 1.0

    from detector.evaluation.evaluate import evaluate
    from detector.scan.model import Model
    from detector.scan.scanner import Settings

    metrics = evaluate(Model(run / "model"), items[:4], folder / "eval", Settings(frames=4), progress=False)
    assert metrics["all"].n == 4 and metrics["all"].auc is not None
    assert set(metrics) >= {"all", "Hue", "real"}
    for name in ("predictions.csv", "metrics.json", "roc.png", "scores.png"):
        assert (folder / "eval" / name).stat().st_size > 0

    from detector.evaluation.evaluate import record_in_card

    record_in_card(run / "model", metrics, "deepfake-detector evaluate …")
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["evaluation"]["metrics"]["all"]["auc"] == metrics["all"].auc
    assert card["input_size"] == 64 and Model(run / "model").input_size == 64  # the contract is intact


def test_resume_after_the_last_epoch_keeps_the_run(trained):
    run, cmd = trained
    before = (run / "log.csv").read_text()
    proc = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" in proc.stderr
    assert (run / "log.csv").read_text() == before  # nothing retrained, nothing lost


def test_init_from_an_exported_model_or_weights_file(trained):
    """Fine-tuning starts from exactly the weights given (SavedModel folder or .weights.h5)."""
    from detector.training.train import TrainConfig, initial_model

    run, _ = trained
    config = TrainConfig(input_size=64)
    from_folder = initial_model(run / "model", config)
    from_weights = initial_model(run / "best.weights.h5", config)
    for a, b in zip(from_folder.get_weights(), from_weights.get_weights()):
        assert np.array_equal(a, b)
    fresh = initial_model(None, config)
    assert any(not np.array_equal(a, b) for a, b in zip(fresh.get_weights(), from_weights.get_weights()))


def test_resume_with_commas_and_quotes_in_paths(tiny_data, tmp_path):
    """The done-list is real CSV: a path with a comma or a quote is recognised as done, not redone."""
    import shutil

    folder, _, _ = tiny_data
    odd = tmp_path / 'face, "odd".png'
    shutil.copy(folder / "astronaut.png", odd)
    items = [LabelledVideo(odd, 0, "photos", "real", ("odd",))]
    out = tmp_path / "crops"
    assert crops.build(items, out, frames=1, crop_size=64, progress=False) == 1
    assert crops.build(items, out, frames=1, crop_size=64, progress=False) == 0
    records = crops.read_index(out)
    assert len(records) == 1 and records[0].video == str(odd)


@pytest.mark.slow
def test_fine_tuning_phases_and_batch_norm(tmp_path):
    """Head phase: only the head moves, batch-norm statistics stay. All phase: the backbone trains;
    --bn frozen keeps every batch-norm weight and statistic, --bn train adapts them."""
    import tensorflow as tf

    from detector.runtime import keras
    from detector.training.train import TrainConfig, initial_model, make_optimizer, set_phase, step_function

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((8, 64, 64, 3), dtype=np.float32))
    y = tf.constant([0, 1] * 4, tf.int32)
    head, seed = tf.zeros(8, tf.int32), tf.constant([0, 0], tf.int64)

    def run(model, phase, config):
        set_phase(model, phase, config)
        step = step_function(model, make_optimizer(config, 1e-2), config)
        for _ in range(3):
            step(x, y, head, seed)

    def weights(model, kind):
        backbone = model.get_layer("backbone")
        return [w.copy() for layer in backbone.layers if isinstance(layer, kind) for w in layer.get_weights()]

    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(a, b))

    frozen = TrainConfig(input_size=64, bn="frozen")
    model = initial_model("imagenet", frozen)
    conv0, bn0, head0 = weights(model, keras.layers.Conv2D), weights(model, keras.layers.BatchNormalization), \
        model.get_layer("p").get_weights()[0].copy()
    run(model, "head", frozen)
    assert same(weights(model, keras.layers.Conv2D), conv0) and same(weights(model, keras.layers.BatchNormalization), bn0)
    assert not np.array_equal(model.get_layer("p").get_weights()[0], head0)
    run(model, "all", frozen)
    assert not same(weights(model, keras.layers.Conv2D), conv0)
    assert same(weights(model, keras.layers.BatchNormalization), bn0)

    adapting = TrainConfig(input_size=64, bn="train")
    model = initial_model("imagenet", adapting)
    bn0 = weights(model, keras.layers.BatchNormalization)
    run(model, "all", adapting)
    assert not same(weights(model, keras.layers.BatchNormalization), bn0)


def test_sampler_pairs_reals_and_fakes_from_the_same_source(tmp_path, astronaut_face):
    """A source without labelled fakes still yields fakes (self-blends of its reals), so no source
    is all-real; with --sbi off such a source cannot make pairs and is left out. With --sbi heads the
    labelled pairs come last, marked for the second head. A batch depends on its step alone."""
    import cv2

    from detector.data.crops import CropRecord
    from detector.training.batches import BLEND_HEAD, LABELLED_HEAD, CropSampler

    face = np.full((64, 64, 3), 128, np.uint8)
    landmarks = np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], np.float32)
    _, _, region, region_face, mesh, _ = astronaut_face
    cv2.imwrite(str(tmp_path / "region.png"), cv2.cvtColor(region, cv2.COLOR_RGB2BGR))
    np.save(tmp_path / "mesh.npy", mesh)

    def record(i, label, dataset):
        path = tmp_path / f"{dataset}{i}_{label}.png"
        cv2.imwrite(str(path), face)
        source = (tmp_path / "region.png", region_face.box, tmp_path / "mesh.npy") if label == 0 else (None,) * 3
        return CropRecord(path, str(path), label, dataset, "real" if label == 0 else "X", (str(i),), 0, 0.0, 0,
                          landmarks, *source)

    records = [record(i, 0, "clips") for i in range(3)] + [record(i, 1, "clips") for i in range(3)]
    records += [record(i, 0, "photos") for i in range(3)]

    def sampler(**kwargs):
        return CropSampler(records, **{"batch_size": 4, "sbi": "mix", "seed": 0, "h264_p": 0.0, **kwargs})

    assert sampler().sources == ["clips", "photos"]
    assert sampler(sbi="off").sources == ["clips"]
    # sources are drawn by the square root of their size: 6 clips' items against 3 photos
    np.testing.assert_allclose(sampler().weights, np.sqrt([6, 3]) / np.sqrt([6, 3]).sum())
    batch = sampler(batch_size=6, h264_p=1.0).batch(7)
    assert batch.x.shape == (6, 64, 64, 3) and batch.x.dtype == np.uint8 and list(batch.y) == [0, 0, 0, 1, 1, 1]
    assert list(batch.head) == [BLEND_HEAD] * 6
    again = sampler(batch_size=6, h264_p=1.0)
    again.batch(3)
    assert np.array_equal(again.batch(7).x, batch.x)  # the same step, the same batch, whatever came before
    heads = sampler(sbi="heads", batch_size=8, labelled_share=0.5)
    assert heads.sources == ["clips", "photos"] and heads.labelled_sources == ["clips"]
    assert list(heads.batch(0).head) == [BLEND_HEAD, BLEND_HEAD, LABELLED_HEAD, LABELLED_HEAD] * 2


@pytest.mark.slow
def test_imagenet_fine_tuning_end_to_end_with_a_test_side(tiny_data):
    """--init imagenet with a head phase and frozen batch-norm; the split holds out a test side
    that is neither trained nor validated on, and the data card says how the model began."""
    folder, items, out = tiny_data
    run = folder / "run_imagenet"
    cmd = [sys.executable, "-m", "detector", "train", "--crops", str(out), "--out", str(run), "--init", "imagenet",
           "--head-steps", "2", "--bn", "frozen", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
           "--input-size", "64", "--warmup-steps", "1", "--val-fraction", "0.34", "--test-fraction", "0.34",
           "--seed", "1", "--ema", "0.9"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (run / "split.csv").open() as handle:
        split = list(csv.DictReader(handle))
    sides = {row["split"] for row in split}
    assert sides == {"train", "val", "test"}
    card = json.loads((run / "model" / "model.json").read_text())
    assert "ImageNet" in card["architecture"] and card["config"]["arch"] == "efficientnet-lite0"
    assert card["split"]["test_videos"] == sum(row["split"] == "test" for row in split)
    assert card["config"]["bn"] == "frozen" and card["config"]["head_steps"] == 2 and card["config"]["ema"] == 0.9


def test_fit_calibration_recovers_a_known_platt_map():
    from detector.scan.aggregation import Calibration
    from detector.evaluation.evaluate import fit_calibration

    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    raw = 1 / (1 + np.exp(-z))
    truth = Calibration(0.5, -0.3)
    labels = (rng.random(z.size) < np.array([truth(p) for p in raw])).astype(int)
    fitted = fit_calibration(list(labels), list(raw))
    assert fitted.scale == pytest.approx(0.5, abs=0.05) and fitted.bias == pytest.approx(-0.3, abs=0.05)


def test_calibrate_writes_the_model_json_the_scanner_reads(trained, tmp_path):
    """evaluate --calibrate's effect: calibration, threshold and their provenance land in model.json;
    log loss does not get worse on the clips it was fitted on."""
    import shutil

    from detector.evaluation.evaluate import calibrate
    from detector.scan.model import Model

    run, _ = trained
    model_dir = tmp_path / "model"
    shutil.copytree(run / "model", model_dir)
    rng = np.random.default_rng(1)
    rows = [{"status": "ok", "label": int(i % 2), "raw": float(np.clip(0.7 + 0.25 * (i % 2) + rng.normal(0, 0.1), 0.01, 0.99)),
             "score": None, "predicted": ""} for i in range(40)]
    rows.append({"status": "no_face", "label": 1, "raw": None, "score": None, "predicted": ""})
    calibration, threshold, fit = calibrate(model_dir, rows, "deepfake-detector evaluate … --calibrate")
    card = json.loads((model_dir / "model.json").read_text())
    assert card["calibration"] == {"scale": calibration.scale, "bias": calibration.bias}
    assert card["threshold"] == round(threshold, 4) and card["calibration_fit"]["videos"] == 40
    assert fit["log_loss_after"] <= fit["log_loss_before"]
    assert Model(model_dir).contract.calibration == calibration
    assert rows[0]["score"] == pytest.approx(calibration(rows[0]["raw"]))


@pytest.mark.slow
def test_training_stops_when_the_network_collapses_or_diverges():
    """A network that scores every crop alike for COLLAPSE_STEPS batches (dead final activations), or
    whose loss is no number, stops the run with a reason instead of training on for an hour."""
    from detector.training.batches import Batch
    from detector.training.train import COLLAPSE_SPREAD, COLLAPSE_STEPS, Progress, TrainConfig, TrainingFailed, run_steps

    def stream(n):
        return iter(lambda: Batch(np.zeros((n, 8, 8, 3), np.uint8), np.arange(n, dtype=np.int32) % 2,
                                  np.zeros(n, np.int32)), None)

    def steps(spreads, losses=None):
        spreads, losses = iter(spreads), iter(losses or [])
        return lambda x, y, head, seed: (next(losses, 0.69), 0.5, next(spreads))

    def run(step, batches, last, desc):
        progress = Progress.new()
        finished = run_steps(step, batches, progress, last, TrainConfig(), desc, lambda: False)
        return finished, progress.loss.numpy() / last, progress.accuracy.numpy() / last

    # a short flat stretch (a batch of near-identical crops) is not a collapse
    flat = [0.0] * (COLLAPSE_STEPS - 1)
    finished, loss, accuracy = run(steps([0.1] + flat + [0.1] + flat), stream(2), 2 * COLLAPSE_STEPS, "epoch 1/1")
    assert finished and loss == pytest.approx(0.69) and accuracy == 0.5
    with pytest.raises(TrainingFailed, match=f"collapsed at epoch 1/1, step {COLLAPSE_STEPS + 3}.*--learning-rate"):
        run(steps([0.2, 0.1, 0.05] + [COLLAPSE_SPREAD / 2] * COLLAPSE_STEPS), stream(2), 100, "epoch 1/1")
    run(steps([0.0] * 3 * COLLAPSE_STEPS), stream(1), 3 * COLLAPSE_STEPS, "epoch 1/1")  # --batch-size 1
    with pytest.raises(TrainingFailed, match="diverged at head, step 3: the loss is nan"):
        run(steps([0.1] * 5, [0.7, 0.6, float("nan")]), stream(2), 5, "head")


@pytest.mark.slow
def test_weight_average_follows_the_weights_is_lent_to_the_network_and_checkpointed(tmp_path):
    """--ema: the average is decay·average + (1 − decay)·weights after every step, with the decay
    ramping up as (1 + n)/(10 + n); applied() (what train() validates and saves under) lends it to
    the network and gives the network's own weights back; it round-trips through a checkpoint."""
    import tensorflow as tf

    from detector.runtime import keras
    from detector.training.train import TrainConfig, WeightAverage, make_optimizer, step_function

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    backbone = keras.Sequential([keras.layers.Flatten(input_shape=(4, 4, 3))], name="backbone")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="p")(backbone(inputs)))
    config = TrainConfig(input_size=4, ema=0.2, dropout=0.0)
    average = WeightAverage(model, config.ema)
    average.restart()
    expected = [w.numpy().copy() for w in model.weights]
    step = step_function(model, make_optimizer(config, 0.1), config, average)
    rng = np.random.default_rng(0)
    for n in range(4):
        step(tf.constant(rng.random((4, 4, 4, 3), dtype=np.float32)), tf.constant([0, 1, 0, 1], tf.int32),
             tf.zeros(4, tf.int32), tf.constant([0, n], tf.int64))
        decay = min(0.2, (1 + n) / (10 + n))  # 0.1, 0.18, then 0.2 (capped)
        expected = [decay * e + (1 - decay) * w.numpy() for e, w in zip(expected, model.weights)]
    own = [w.numpy().copy() for w in model.weights]
    assert not all(np.allclose(e, w) for e, w in zip(expected, own))
    with average.applied():
        assert all(np.allclose(w.numpy(), e, atol=1e-6) for w, e in zip(model.weights, expected))
    assert all(np.array_equal(w.numpy(), o) for w, o in zip(model.weights, own))

    saved = tf.train.Checkpoint(average=average.state).save(str(tmp_path / "ckpt"))
    average.restart()
    tf.train.Checkpoint(average=average.state).restore(saved)
    assert int(average.state.updates.numpy()) == 4
    assert all(np.allclose(s.numpy(), e, atol=1e-6) for s, e in zip(average.state.shadows, expected))


@pytest.mark.slow
def test_keep_last_exports_the_final_epoch_whatever_validation_says(tiny_data):
    """--keep last: a fixed schedule; the final epoch is exported and validation only logs."""
    folder, _, out = tiny_data
    run = folder / "run_last"
    cmd = [sys.executable, "-m", "detector", "train", "--crops", str(out), "--out", str(run), "--epochs", "3",
           "--steps-per-epoch", "1", "--batch-size", "4", "--input-size", "64", "--warmup-steps", "1",
           "--val-fraction", "0.5", "--seed", "3", "--keep", "last"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = json.loads((run / "best.json").read_text())
    card = json.loads((run / "model" / "model.json").read_text())
    assert kept["epoch"] == 3 and card["validation"]["epoch"] == 3 and card["config"]["keep"] == "last"


@pytest.mark.slow
def test_a_run_stopped_and_resumed_ends_where_an_uninterrupted_one_does(tiny_data, tmp_path):
    """Checkpoints keep the step, both optimizers, the learning rate, the moving average and the
    epoch's running sums; batches and dropout are functions of (seed, step). So a run stopped
    mid-head-phase and again mid-epoch, resumed each time (once with its batches made in a worker
    process), exports the same weights and logs the same epochs as one that ran straight through."""
    import tf_keras

    from detector.training.train import TrainConfig, train

    _, _, out = tiny_data
    config = TrainConfig(sbi="heads", labelled_share=0.5, head_steps=2, epochs=2, steps_per_epoch=2, batch_size=4,
                         input_size=64, warmup_steps=1, val_fraction=0.5, seed=5, ema=0.5, keep="last", h264_p=0.5)
    straight = train([out], tmp_path / "straight", config, workers=0)
    cut = tmp_path / "cut"
    assert train([out], cut, config, workers=0, stop_after_steps=1) is None
    assert train([out], cut, config, resume=True, workers=1, stop_after_steps=3) is None
    assert not (cut / "log.csv").exists()  # stopped inside the first epoch
    resumed = train([out], cut, config, resume=True, workers=0)
    a, b = (tf_keras.models.load_model(str(folder), compile=False).get_weights() for folder in (straight, resumed))
    assert len(a) == len(b) and all(np.allclose(u, v, rtol=0, atol=1e-6) for u, v in zip(a, b))
    columns = ("epoch", "train_loss", "train_accuracy", "val_video_auc", "val_video_auc_blend", "learning_rate")
    assert [[row[c] for c in columns] for row in read_csv(cut / "log.csv")] == \
           [[row[c] for c in columns] for row in read_csv(tmp_path / "straight" / "log.csv")]
    for head in ("blend", "labelled"):  # each head alone, exported beside the fused network
        assert (cut / "heads" / head / "model.json").exists()


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_fine_tuning_the_bundled_two_head_model_needs_its_two_heads():
    from detector.scan.model import DEFAULT_MODEL_DIR
    from detector.training.networks import head_layers
    from detector.training.train import TrainConfig, initial_model

    with pytest.raises(ValueError, match="2 head.*--sbi heads"):
        initial_model(DEFAULT_MODEL_DIR, TrainConfig(sbi="mix"))
    model = initial_model(DEFAULT_MODEL_DIR, TrainConfig(sbi="heads"))
    assert [layer.name for layer in head_layers(model)] == ["blend", "labelled"]
