"""Train a deepfake detector on face-crop datasets and export it for the scanner.

    deepfake-detector train --crops work/crops_clips --crops work/crops_lfw --out work/run --init imagenet

The network is EfficientNet-Lite0 (default; `--init imagenet` starts from its ImageNet weights)
or EfficientNetV2-B0 (`--arch efficientnetv2-b0`). A pretrained network is fine-tuned in two
phases: the new head alone (`--head-steps`, backbone frozen), then the whole network at
`--learning-rate` with warm-up and cosine decay; `--bn frozen` keeps the backbone's batch-norm
statistics from ImageNet, `--bn train` adapts them.

Batches are balanced: half real crops, half fakes. Each real/fake pair comes from one source
(a clip dataset, a photo folder, a crop pool; drawn in proportion to the square root of its
size), so no source can stand in for a label; the fake
is that source's labelled fake or a self-blended image made on the fly from a real face's source
region (`--sbi`), and then that face is the pair's real, as the paper pairs them
(detector.training.selfblend). Self-blends teach the blending boundary every face swap leaves
rather than one method's fingerprint. Clips are split by source identity into train, val and test; validation
(crop- and video-level AUC) runs every epoch on val; the best epoch is exported (`--keep last`: the final one, so nothing is chosen on val) as a SavedModel
in the original model's format with a model.json contract and data card. Test clips are left
alone for `deepfake-detector evaluate --subset test`.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.evaluation.metrics import compute_metrics, pick_threshold
from detector.files import atomic_open, atomic_write
from detector.runtime import command_line, keras, tf
from detector.training.augment import AugmentConfig, augment, h264_roundtrip
from detector.data.crops import CropRecord, read_index
from detector.data.datasets import LabelledVideo, official_test_paths, read_split_sides, split_sides, write_split
from detector.training.networks import ARCHITECTURES, CONTRACT, build_detector
from detector.training.selfblend import cut, sample_grid, self_blend
from detector.scan.video import IMAGE_EXTENSIONS

SBI_MODES = ("off", "mix", "only")
BN_MODES = ("train", "frozen")
KEEP_MODES = ("best", "last")
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_crop_auc", "val_video_auc", "val_video_log_loss",
               "learning_rate", "seconds", "crops_per_second")


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "efficientnet-lite0"
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 16
    optimizer: str = "adam"  # or "sgd" (momentum 0.9, nesterov)
    learning_rate: float = 1e-3  # the whole network, after warm-up, decaying to 1% by the end
    warmup_steps: int = 100
    head_steps: int = 0  # first, this many steps train the head alone (backbone frozen)
    head_learning_rate: float = 1e-3
    bn: str = "train"  # train: batch-norm adapts to the new data; frozen: keeps the initial statistics
    sbi: str = "mix"  # off: labelled fakes only; mix: half of the fakes self-blended; only: no labelled fakes
    h264_p: float = 0.25  # share of each batch re-encoded as H.264 at a random quality
    ema: float = 0.0  # decay of a moving average of the weights, validated and exported instead (0: off)
    keep: str = "best"  # best: the epoch of highest validation AUC is exported; last: the final epoch (a fixed schedule)
    dropout: float = 0.2
    label_smoothing: float = 0.05
    input_size: int = 224
    val_fraction: float = 0.25
    test_fraction: float = 0.0
    val_crops_per_video: int = 16  # evenly spaced: enough for a video's mean, cheap every epoch
    seed: int = 0


def initial_model(init: str | Path | None, config: TrainConfig) -> keras.Model:
    """A new network (`None`: random; "imagenet": pretrained backbone) or one to fine-tune:
    a SavedModel folder (tf_keras) or a weights file."""
    if init is None or str(init) == "imagenet":
        return build_detector(config.arch, config.input_size, config.dropout, imagenet=init is not None)
    init = Path(init)
    if init.is_dir():
        return keras.models.load_model(str(init), compile=False)
    model = build_detector(config.arch, config.input_size, config.dropout)
    model.load_weights(str(init))
    return model


class CropSampler:
    """Balanced, augmented training batches of pairs: a real crop and a fake from the same source.

    A self-blended fake is made from a real face's source region and comes with that very face
    (as the paper pairs them), so the two differ only by the blend; a labelled fake comes with a
    real crop of its source. Both crops of a pair get the same augmentation and re-encoding, so
    nothing but the fake's traces tells them apart."""

    def __init__(self, records: list[CropRecord], config: TrainConfig, rng: np.random.Generator,
                 augmentation: AugmentConfig = AugmentConfig()):
        if config.batch_size % 2:
            raise ValueError(f"--batch-size must be even (pairs of a real and a fake), got {config.batch_size}")
        self.reals: dict[str, list[CropRecord]] = {}
        self.fakes: dict[str, list[CropRecord]] = {}
        for record in records:
            if record.label == 1 and config.sbi == "only":
                continue
            (self.fakes if record.label == 1 else self.reals).setdefault(record.dataset, []).append(record)
        if not self.reals:
            raise ValueError("training needs real crops (self-blended fakes are made from them)")
        # Reals with a source region and a face mesh are the ones self-blends are made from.
        self.blendable = {d: [r for r in pool if r.mesh is not None] for d, pool in self.reals.items()}
        if config.sbi != "off" and not any(self.blendable.values()):
            raise ValueError(f"--sbi {config.sbi} needs real crops with source regions and face meshes: "
                             "build the crops again (deepfake-detector crops) into a new --out")
        if config.sbi == "off" and not self.fakes:
            raise ValueError("--sbi off needs labelled fake crops")
        fakes_of = {"off": lambda d: self.fakes.get(d), "only": lambda d: self.blendable[d],
                    "mix": lambda d: self.fakes.get(d) or self.blendable[d]}[config.sbi]
        self.sources = sorted(d for d in self.reals if fakes_of(d))
        if not self.sources:
            raise ValueError("--sbi off needs real and fake crops from the same source")
        # Sources are drawn in proportion to the square root of their number of clips or photos:
        # a pool of thousands of photos does not drown a few dozen clips, nor are those clips
        # repeated until they are learnt by heart.
        sizes = np.array([len({r.video for r in self.reals[d] + self.fakes.get(d, [])}) for d in self.sources])
        self.weights = np.sqrt(sizes) / np.sqrt(sizes).sum()
        self.config, self.rng, self.augmentation = config, rng, augmentation
        self._cache: dict[Path, np.ndarray] = {}

    def _image(self, record: CropRecord) -> np.ndarray:
        """Crops are small (224² PNG) and meshes smaller: keep them after the first use (regions
        are larger, and read each time)."""
        if record.crop not in self._cache:
            self._cache[record.crop] = record.image()
        return self._cache[record.crop]

    def _mesh(self, record: CropRecord) -> np.ndarray:
        if record.mesh not in self._cache:
            self._cache[record.mesh] = np.load(record.mesh)
        return self._cache[record.mesh]

    def _pick(self, pool: list[CropRecord]) -> CropRecord:
        return pool[self.rng.integers(len(pool))]

    def _pair(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """(real, fake) crops of one source: half the time (--sbi mix) or never (--sbi only) a
        labelled fake, else a self-blend with the face it was made from."""
        labelled, blendable = self.fakes.get(source), self.blendable[source]
        if labelled and (self.config.sbi == "off" or not blendable or self.rng.random() < 0.5):
            return self._image(self._pick(self.reals[source])), self._image(self._pick(labelled))
        record = self._pick(blendable)
        size = self._image(record).shape[0]
        blend = self_blend(record.region_image(), self._mesh(record), self.rng)
        return cut(blend.real, record.region_box, size), cut(blend.fake, record.region_box, size)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """batch_size/2 reals, then their fakes in the same order (real i and fake i are a pair)."""
        n = self.config.batch_size // 2
        sources = [self.sources[i] for i in self.rng.choice(len(self.sources), size=n, p=self.weights)]
        pairs = [self._pair(source) for source in sources]
        seeds = self.rng.integers(2**63, size=n)  # one augmentation per pair, drawn alike for both
        x = np.stack([augment(pair[k], np.random.default_rng(seed), self.augmentation)
                      for k in (0, 1) for pair, seed in zip(pairs, seeds)])
        recode = np.flatnonzero(self.rng.random(n) < self.config.h264_p)
        if len(recode):
            both = np.concatenate([recode, recode + n])
            x[both] = h264_roundtrip(x[both], int(self.rng.integers(18, 41)))
        return CONTRACT.to_input(x), np.array([0] * n + [1] * n)


def prefetch(make, size: int = 4):
    """Make batches on a thread while the network trains on the last one (cv2, numpy and ffmpeg
    release the GIL). One producer, so the batches come in the same order as without it."""
    batches: queue.Queue = queue.Queue(size)

    def produce():
        while True:
            try:
                batches.put(make())
            except BaseException as exc:  # hand the failure to the consumer
                batches.put(exc)
                return

    threading.Thread(target=produce, daemon=True).start()
    while True:
        item = batches.get()
        if isinstance(item, BaseException):
            raise item
        yield item


def write_blend_samples(sampler: CropSampler, png: Path, seed: int) -> None:
    """self_blend_samples.png: real, mask and self-blend of up to six training faces, one per source
    first, to check the blends by eye."""
    pools = [pool[:: max(1, len(pool) // 6)] for pool in sampler.blendable.values() if pool]
    picked = [pool[i] for i in range(6) for pool in pools if i < len(pool)][:6]
    if picked:
        sample_grid([(r.region_image(), np.load(r.mesh), r.region_box) for r in picked], png,
                    size=sampler._image(picked[0]).shape[0], seed=seed)


def predict(model: keras.Model, records: list[CropRecord], batch_size: int = 32) -> np.ndarray:
    scores = []
    for start in range(0, len(records), batch_size):
        x = CONTRACT.to_input(np.stack([r.image() for r in records[start:start + batch_size]]))
        scores.append(CONTRACT.p_fake(model(x, training=False).numpy()))
    return np.concatenate(scores) if scores else np.zeros(0)


def validate(model: keras.Model, records: list[CropRecord]) -> dict:
    """Crop- and video-level metrics; a video's score is its crops' mean, as the scanner's one-face case."""
    if not records:
        return {}
    scores = predict(model, records)
    labels = np.array([r.label for r in records])
    videos = sorted({r.video for r in records})
    video_scores = np.array([scores[[r.video == v for r in records]].mean() for v in videos])
    video_labels = np.array([next(r.label for r in records if r.video == v) for v in videos])
    crop_m = compute_metrics(labels, scores, 0.5)
    video_m = compute_metrics(video_labels, video_scores, 0.5)
    threshold = pick_threshold(video_labels, video_scores) if video_m.auc is not None else 0.5
    return {"crop_auc": crop_m.auc, "crop_log_loss": crop_m.log_loss, "video_auc": video_m.auc,
            "video_log_loss": video_m.log_loss, "video_accuracy": video_m.accuracy, "threshold": threshold,
            "n_val_videos": len(videos), "n_val_crops": len(records)}


def split_records(records: list[CropRecord], split: Path | None, config: TrainConfig) -> tuple[list, list, dict]:
    """Train/val crops by source identity: from a split file, else a new seeded split, written down.

    Photos and crop pools only ever train; test clips are neither trained nor validated on.
    A dataset's official test list (Celeb-DF's) is honoured: those clips are held out."""
    videos = {r.video: LabelledVideo(Path(r.video), r.label, r.dataset, r.method, r.identities) for r in records}
    if split is not None and split.exists():
        sides = read_split_sides(split)
    else:
        photos = [v for v in videos.values() if v.path.suffix.lower() in IMAGE_EXTENSIONS]
        clips = [v for v in videos.values() if v.path.suffix.lower() not in IMAGE_EXTENSIONS]
        sides = split_sides(clips, config.val_fraction, config.test_fraction, config.seed, official_test_paths(clips))
        sides["train"] += photos
        if split is not None:
            write_split(split, sides["train"], sides["val"], sides["test"])
    held_out = {str(v.path) for side in ("val", "test") for v in sides[side]}
    val_paths = {str(v.path) for v in sides["val"]}
    train = [r for r in records if r.video not in held_out]
    val = []
    for video in sorted(val_paths):
        crops = [r for r in records if r.video == video]
        step = max(1, len(crops) // config.val_crops_per_video)
        val += crops[::step][:config.val_crops_per_video]
    info = {"train_items": len({r.video for r in train}),
            "train_photos": len({r.video for r in train if Path(r.video).suffix.lower() in IMAGE_EXTENSIONS}),
            "val_videos": len(val_paths & set(videos)), "test_videos": len(sides["test"]),
            "train_crops": len(train), "val_crops": len(val)}
    return train, val, info


def learning_rate(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    total = config.epochs * config.steps_per_epoch
    cosine = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(1, total - config.warmup_steps), alpha=0.01)

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up, then cosine decay: the ramp keeps the first updates to the backbone small."""
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warm = config.learning_rate * (step + 1) / max(1, config.warmup_steps)
            return tf.where(step < config.warmup_steps, warm, cosine(step - config.warmup_steps))

    return WarmupCosine()


def make_optimizer(config: TrainConfig, rate) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)


def set_phase(model: keras.Model, phase: str, config: TrainConfig) -> None:
    """"head": only the classifier trains and the backbone runs in inference mode (batch-norm
    statistics untouched); "all": everything trains, batch-norm layers as `config.bn` says —
    in tf_keras a non-trainable BatchNormalization layer also runs in inference mode."""
    backbone = model.get_layer("backbone")
    backbone.trainable = phase == "all"
    if phase == "all" and config.bn == "frozen":
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def step_function(model: keras.Model, optimizer: keras.optimizers.Optimizer, config: TrainConfig,
                  average: WeightAverage | None = None):
    """One compiled training step over the variables trainable now (call again after set_phase),
    folding the new weights into `average` where there is one."""
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = loss_fn(tf.one_hot(y, 2), p)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        if average is not None:
            average.update()
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(p, 1, output_type=tf.int32), y), tf.float32))
        return loss, accuracy, tf.math.reduce_std(p[:, CONTRACT.fake_index])

    return step


class WeightAverage:
    """An exponential moving average of a network's weights (--ema DECAY), kept beside them.

    Fine-tuned on little data, the weights wander from batch to batch: the bundled recipe's
    validation AUC moved by up to 0.07 between neighbouring epochs. Their running average moves
    less, and it is what gets validated, chosen and exported. The decay ramps up from 0.1 as
    (1 + n) / (10 + n) over the first updates, so the average soon leaves the starting weights."""

    def __init__(self, model: keras.Model, decay: float):
        self.model, self.decay = model, decay
        self.state = tf.Module()  # checkpointed with the run, so --resume goes on averaging
        self.state.updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.state.shadows = [tf.Variable(w, trainable=False) for w in model.weights]

    def restart(self) -> None:
        """Average from the weights as they are now (the whole network's phase starts)."""
        self.state.updates.assign(0)
        for shadow, weight in zip(self.state.shadows, self.model.weights):
            shadow.assign(weight)

    def update(self) -> None:
        n = tf.cast(self.state.updates, tf.float32)
        decay = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + n) / (10.0 + n))
        for shadow, weight in zip(self.state.shadows, self.model.weights):
            shadow.assign(tf.cast(decay, weight.dtype) * shadow + tf.cast(1.0 - decay, weight.dtype) * weight)
        self.state.updates.assign_add(1)

    @contextlib.contextmanager
    def applied(self):
        """The network holds the averaged weights inside the block and its own again after it."""
        own = [weight.numpy() for weight in self.model.weights]
        for shadow, weight in zip(self.state.shadows, self.model.weights):
            weight.assign(shadow)
        try:
            yield
        finally:
            for weight, value in zip(self.model.weights, own):
                weight.assign(value)


class TrainingFailed(RuntimeError):
    """The network cannot learn any more in this run: its loss is no number, or it gives every crop
    the same score."""


# A collapsed network scores every crop of a batch the same (its last ReLU6 activations have all died:
# zero features, zero gradients) and never recovers (the model card tells of a seed of the bundled
# recipe that did). A healthy one's scores spread by more than COLLAPSE_SPREAD over a batch.
COLLAPSE_SPREAD = 1e-4
COLLAPSE_STEPS = 25  # batches in a row


def run_steps(step, batches, n: int, desc: str) -> tuple[float, float, float]:
    """Train n steps; returns mean loss, mean accuracy and seconds. Raises TrainingFailed as soon
    as the loss is not finite or the network has collapsed, rather than train a dead network on."""
    started = time.perf_counter()
    losses, accuracies, flat = [], [], 0
    bar = tqdm(range(n), desc=desc, file=sys.stderr)
    for i in bar:
        x, y = next(batches)
        loss, accuracy, spread = (float(v) for v in step(tf.constant(x), tf.constant(y, tf.int32)))
        if not np.isfinite(loss):
            raise TrainingFailed(f"training diverged at {desc}, step {i + 1}: the loss is {loss}. Nothing was exported; "
                                 "start again with a lower --learning-rate.")
        flat = flat + 1 if len(x) > 1 and spread < COLLAPSE_SPREAD else 0  # one crop has no spread
        if flat >= COLLAPSE_STEPS:
            raise TrainingFailed(
                f"training collapsed at {desc}, step {i + 1}: for {COLLAPSE_STEPS} batches in a row the network has "
                "given every crop the same score (its last activations have died), and it cannot recover. Nothing was "
                "exported. Start again in a new --out (or --resume from the last finished epoch, if there is one) "
                "with a lower --learning-rate or another --seed.")
        losses.append(loss)
        accuracies.append(accuracy)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", acc=f"{np.mean(accuracies[-20:]):.2f}")
    return float(np.mean(losses)), float(np.mean(accuracies)), time.perf_counter() - started


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_log(path: Path, rows: list[dict]) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def train(crops: list[Path], out: Path, config: TrainConfig, split: Path | None = None,
          init: str | Path | None = None, resume: bool = False, command: str = "") -> Path:
    """Run the training; returns the exported SavedModel folder (out/model)."""
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    records = [r for folder in crops for r in read_index(folder)]
    train_records, val_records, split_info = split_records(records, split or out / "split.csv", config)
    sampler = CropSampler(train_records, config, rng)
    write_blend_samples(sampler, out / "self_blend_samples.png", config.seed)

    model = initial_model(init, config)
    schedule = learning_rate(config)
    optimizer = make_optimizer(config, schedule)
    head_optimizer = make_optimizer(config, config.head_learning_rate)
    epoch_var = tf.Variable(0, dtype=tf.int64)
    best_var = tf.Variable(-1.0, dtype=tf.float64)
    average = WeightAverage(model, config.ema) if config.ema > 0 else None
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, head_optimizer=head_optimizer,
                                     epoch=epoch_var, best=best_var,
                                     **({"average": average.state} if average else {}))
    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=1)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} after epoch {int(epoch_var.numpy())}", file=sys.stderr)
        sampler.rng = np.random.default_rng([config.seed, int(epoch_var.numpy())])
    log_path = out / "log.csv"
    log_rows = read_log(log_path) if resume else []
    batches = prefetch(sampler.batch)

    if config.head_steps and int(epoch_var.numpy()) == 0:
        set_phase(model, "head", config)
        loss, accuracy, _ = run_steps(step_function(model, head_optimizer, config), batches, config.head_steps, "head")
        print(f"head: loss {loss:.3f}, accuracy {accuracy:.2f}", file=sys.stderr)
    set_phase(model, "all", config)
    if average and int(epoch_var.numpy()) == 0:
        average.restart()
    step = step_function(model, optimizer, config, average)
    for epoch in range(int(epoch_var.numpy()), config.epochs):
        loss, accuracy, seconds = run_steps(step, batches, config.steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}")
        with average.applied() if average else contextlib.nullcontext():
            metrics = validate(model, val_records)
            score = metrics.get("video_auc") or metrics.get("crop_auc") or 0.0
            if config.keep == "last" or score >= best_var.numpy() or not val_records:
                best_var.assign(score)
                model.save_weights(str(out / "best.weights.h5"))
                atomic_write(out / "best.json", json.dumps({"epoch": epoch + 1, **metrics}, indent=1))
        speed = config.steps_per_epoch * config.batch_size / seconds
        log_rows.append({
            "epoch": epoch + 1, "train_loss": f"{loss:.4f}", "train_accuracy": f"{accuracy:.4f}",
            "val_crop_auc": _fmt(metrics.get("crop_auc")), "val_video_auc": _fmt(metrics.get("video_auc")),
            "val_video_log_loss": _fmt(metrics.get("video_log_loss")),
            "learning_rate": f"{float(schedule(optimizer.iterations)):.2e}", "seconds": f"{seconds:.1f}",
            "crops_per_second": f"{speed:.1f}"})
        write_log(log_path, log_rows)
        plot_curves(log_rows, out / "curves.png")
        epoch_var.assign(epoch + 1)
        manager.save()
        print(f"epoch {epoch + 1}: loss {loss:.3f}, val video AUC {_fmt(metrics.get('video_auc'))}, "
              f"crop AUC {_fmt(metrics.get('crop_auc'))}, {speed:.1f} crops/s", file=sys.stderr)

    model.load_weights(str(out / "best.weights.h5"))
    best = json.loads((out / "best.json").read_text())
    card = {
        "name": f"deepfake-detector {config.arch}",
        "architecture": describe_init(config.arch, init),
        "trained_on": sorted({f"{r.dataset}/{r.method}" for r in train_records}),
        "split": {**split_info, "by": "source identity", "seed": config.seed, "file": "split.csv"},
        "validation": best,
        "config": asdict(config),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    return export(model, out / "model", threshold=best.get("threshold", 0.5), card=card)


def describe_init(arch: str, init: str | Path | None) -> str:
    if init is None:
        return f"{arch} (tf_keras), from scratch"
    if str(init) == "imagenet":
        return f"{arch} (tf_keras), ImageNet-pretrained backbone, fine-tuned"
    return f"{arch} (tf_keras), fine-tuned from {init}"


def export(model: keras.Model, folder: Path, threshold: float, card: dict) -> Path:
    """SavedModel in the original format (tf_keras: saved_model.pb, keras_metadata.pb, variables/),
    no optimizer state, plus model.json: the contract the scanner reads and the data card."""
    model.save(str(folder), include_optimizer=False)
    contract = replace(CONTRACT, input_size=int(model.input_shape[1]), threshold=round(float(threshold), 4), card=card)
    atomic_write(folder / "model.json", json.dumps(contract.to_json(), indent=1) + "\n")
    return folder


def plot_curves(rows: list[dict], png: Path) -> None:
    from matplotlib.figure import Figure

    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o", label="train loss")
    left.set_xlabel("epoch")
    left.legend()
    for column, name in (("val_crop_auc", "val crop AUC"), ("val_video_auc", "val video AUC")):
        right.plot(epochs, [float(r[column]) if r[column] else np.nan for r in rows], marker="o", label=name)
    right.set_ylim(0, 1)
    right.set_xlabel("epoch")
    right.legend()
    fig.tight_layout()
    with atomic_open(png, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="deepfake-detector train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, action="append", required=True,
                        help="crop dataset folder from deepfake-detector crops (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: log, curves, checkpoints, model/")
    parser.add_argument("--split", type=Path, default=None,
                        help="split CSV to use (written there if missing; default OUT/split.csv)")
    parser.add_argument("--init", default=None,
                        help="'imagenet' (pretrained backbone), or a SavedModel folder or .weights.h5 to start from; "
                             "default: random weights")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    choices = {"optimizer": ("adam", "sgd"), "sbi": SBI_MODES, "bn": BN_MODES, "arch": ARCHITECTURES, "keep": KEEP_MODES}
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if name in choices:
            parser.add_argument(flag, choices=choices[name], default=value, help=f"default {value}")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    args = parser.parse_args(argv)
    config = TrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"training on {device}: {config}", file=sys.stderr)
    command = command_line("train", argv)
    try:
        folder = train(args.crops, args.out, config, args.split, args.init, args.resume, command)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {folder} (use it with: python app.py --model {folder} ...)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
