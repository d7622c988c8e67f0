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
(detector.training.selfblend); `--sbi heads` gives self-blends and labelled fakes a head each on
one backbone and fuses their logits. Batches are made ahead in worker processes, each a function of
(seed, step) (detector.training.batches), so a run checkpointed every few minutes and continued
with `--resume` ends exactly where an uninterrupted one does. Self-blends teach the blending boundary every face swap leaves
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
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.evaluation.metrics import compute_metrics, pick_threshold
from detector.files import atomic_open, atomic_write
from detector.runtime import command_line, keras, tf
from detector.data.crops import CropRecord, read_index
from detector.data.datasets import LabelledVideo, official_test_paths, read_split_sides, split_sides, write_split
from detector.training.batches import SBI_MODES, CropSampler, batches
from detector.training.networks import ARCHITECTURES, CONTRACT, HEADS, build_detector, head_layers, head_probabilities
from detector.training.selfblend import sample_grid
from detector.scan.video import IMAGE_EXTENSIONS

BN_MODES = ("train", "frozen")
KEEP_MODES = ("best", "last")
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_crop_auc", "val_video_auc", "val_video_log_loss",
               "val_video_auc_blend", "val_video_auc_labelled", "learning_rate", "seconds", "crops_per_second")


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
    sbi: str = "mix"  # off: labelled fakes only; mix: half of the fakes self-blended; only: no labelled fakes;
    # heads: self-blends train one head, labelled fakes a second one (labelled_share of the pairs), fused equally
    labelled_share: float = 0.25
    h264_p: float = 0.25  # share of each batch re-encoded as H.264 at a random quality
    ema: float = 0.0  # decay of a moving average of the weights, validated and exported instead (0: off)
    keep: str = "best"  # best: the epoch of highest validation AUC is exported; last: the final epoch (a fixed schedule)
    threshold: float = 0.0  # exported in model.json; 0: the one that best separates the validation videos
    dropout: float = 0.2
    label_smoothing: float = 0.05
    input_size: int = 224
    val_fraction: float = 0.25
    test_fraction: float = 0.0
    val_crops_per_video: int = 16  # evenly spaced: enough for a video's mean, cheap every epoch
    seed: int = 0


def heads(config: TrainConfig) -> int:
    return 2 if config.sbi == "heads" else 1


def initial_model(init: str | Path | None, config: TrainConfig) -> keras.Model:
    """A new network (`None`: random; "imagenet": pretrained backbone) or one to fine-tune:
    a SavedModel folder (tf_keras) or a weights file."""
    if init is None or str(init) == "imagenet":
        return build_detector(config.arch, config.input_size, config.dropout, imagenet=init is not None,
                              heads=heads(config))
    init = Path(init)
    if init.is_dir():
        model = keras.models.load_model(str(init), compile=False)
        if len(head_layers(model)) != heads(config):
            raise ValueError(f"{init} has {len(head_layers(model))} head(s) and --sbi {config.sbi} trains "
                             f"{heads(config)}: fine-tune it with {'--sbi heads' if heads(config) == 1 else 'a one-head --sbi'}, "
                             "or start from --init imagenet")
        return model
    model = build_detector(config.arch, config.input_size, config.dropout, heads=heads(config))
    model.load_weights(str(init))
    return model


def sampler_kwargs(records: list[CropRecord], config: TrainConfig) -> dict:
    """What a CropSampler (detector.training.batches) needs of a run: plain values, sent to its workers."""
    return dict(records=records, batch_size=config.batch_size, sbi=config.sbi, seed=config.seed,
                h264_p=config.h264_p, labelled_share=config.labelled_share)


def write_blend_samples(sampler: CropSampler, png: Path, seed: int) -> None:
    """self_blend_samples.png: real, mask and self-blend of up to six training faces, one per source
    first, to check the blends by eye."""
    pools = [pool[:: max(1, len(pool) // 6)] for pool in sampler.blendable.values() if pool]
    picked = [pool[i] for i in range(6) for pool in pools if i < len(pool)][:6]
    if picked:
        sample_grid([(r.region_image(), np.load(r.mesh), r.region_box) for r in picked], png,
                    size=sampler.image(picked[0]).shape[0], seed=seed)


def scorer(model: keras.Model) -> keras.Model:
    """The network giving p(fake) of the fused output and of each head (one column each)."""
    outputs = [model.output[:, CONTRACT.fake_index]]
    layers = head_layers(model)
    if len(layers) > 1:
        outputs += [keras.layers.Softmax()(layer.output)[:, CONTRACT.fake_index] for layer in layers]
    return keras.Model(model.input, keras.layers.Concatenate()([keras.layers.Reshape((1,))(o) for o in outputs]))


def predict(model: keras.Model, records: list[CropRecord], batch_size: int = 32) -> np.ndarray:
    """p(fake) per crop: one column, the fused output, and one per head where there are two."""
    scores, score = [], scorer(model)
    for start in range(0, len(records), batch_size):
        x = CONTRACT.to_input(np.stack([r.image() for r in records[start:start + batch_size]]))
        scores.append(score(x, training=False).numpy())
    return np.concatenate(scores) if scores else np.zeros((0, 1))


def validate(model: keras.Model, records: list[CropRecord]) -> dict:
    """Crop- and video-level metrics; a video's score is its crops' mean, as the scanner's one-face case.
    With two heads, each head's video AUC too (video_auc_blend, video_auc_labelled)."""
    if not records:
        return {}
    columns = predict(model, records)
    labels = np.array([r.label for r in records])
    videos = sorted({r.video for r in records})
    members = [np.array([r.video == v for r in records]) for v in videos]
    video_labels = np.array([next(r.label for r in records if r.video == v) for v in videos])
    scores = columns[:, 0]
    video_scores = np.array([scores[m].mean() for m in members])
    crop_m = compute_metrics(labels, scores, 0.5)
    video_m = compute_metrics(video_labels, video_scores, 0.5)
    threshold = pick_threshold(video_labels, video_scores) if video_m.auc is not None else 0.5
    metrics = {"crop_auc": crop_m.auc, "crop_log_loss": crop_m.log_loss, "video_auc": video_m.auc,
               "video_log_loss": video_m.log_loss, "video_accuracy": video_m.accuracy, "threshold": threshold,
               "n_val_videos": len(videos), "n_val_crops": len(records)}
    for k, name in enumerate(HEADS[2] if columns.shape[1] > 1 else (), start=1):
        head_scores = np.array([columns[m, k].mean() for m in members])
        metrics[f"video_auc_{name}"] = compute_metrics(video_labels, head_scores, 0.5).auc
    return metrics


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
    folding the new weights into `average` where there is one.

    The step takes the batch, each crop's head and a seed: dropout is drawn from the seed (the
    trainer passes [seed, step]), so a resumed run drops the same features an uninterrupted one
    does. Each head's loss is the mean over its own crops; the network's is their sum."""
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing,
                                                   reduction=keras.losses.Reduction.NONE)
    backbone, layers = model.get_layer("backbone"), head_layers(model)
    variables = model.trainable_variables

    @tf.function
    def step(x, y, head, seed):
        with tf.GradientTape() as tape:
            features = backbone(x, training=True)
            if config.dropout:
                features = tf.nn.experimental.stateless_dropout(features, config.dropout, seed)
            loss, p_own = 0.0, tf.zeros(tf.shape(y), tf.float32)
            for k, layer in enumerate(layers):
                p = head_probabilities(layer, features)
                mine = tf.cast(tf.equal(head, k), tf.float32)
                loss += tf.reduce_sum(loss_fn(tf.one_hot(y, 2), p) * mine) / tf.maximum(tf.reduce_sum(mine), 1.0)
                p_own += mine * p[:, CONTRACT.fake_index]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        if average is not None:
            average.update()
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(p_own >= 0.5, tf.int32), y), tf.float32))
        return loss, accuracy, tf.math.reduce_std(p_own)

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


@dataclass
class Progress:
    """Where a run stands, kept in its checkpoint so --resume goes on from the very step: the steps
    done (head phase first) and the running sums of the epoch under way."""
    step: tf.Variable
    loss: tf.Variable
    accuracy: tf.Variable
    seconds: tf.Variable

    @classmethod
    def new(cls) -> "Progress":
        return cls(tf.Variable(0, dtype=tf.int64), *(tf.Variable(0.0, dtype=tf.float64) for _ in range(3)))

    def reset(self) -> None:
        for sums in (self.loss, self.accuracy, self.seconds):
            sums.assign(0.0)


def run_steps(step, batches, progress: Progress, last: int, config: TrainConfig, desc: str, save) -> bool:
    """Train from progress.step up to global step `last`, calling save() whenever it asks to
    (it returns True to stop the run there). Returns False if the run was stopped early.
    Raises TrainingFailed as soon as the loss is not finite or the network has collapsed, rather
    than train a dead network on."""
    flat = 0
    first = int(progress.step.numpy())
    bar = tqdm(range(first, last), desc=desc, file=sys.stderr)
    recent: list[tuple[float, float]] = []
    for i in bar:
        started = time.perf_counter()
        batch = next(batches)
        loss, accuracy, spread = (float(v) for v in step(
            tf.constant(CONTRACT.to_input(batch.x)), tf.constant(batch.y), tf.constant(batch.head),
            tf.constant([config.seed, i], tf.int64)))
        if not np.isfinite(loss):
            raise TrainingFailed(f"training diverged at {desc}, step {i + 1}: the loss is {loss}. Nothing was exported; "
                                 "start again with a lower --learning-rate.")
        flat = flat + 1 if len(batch.x) > 1 and spread < COLLAPSE_SPREAD else 0  # one crop has no spread
        if flat >= COLLAPSE_STEPS:
            raise TrainingFailed(
                f"training collapsed at {desc}, step {i + 1}: for {COLLAPSE_STEPS} batches in a row the network has "
                "given every crop the same score (its last activations have died), and it cannot recover. Nothing was "
                "exported. Start again in a new --out (or --resume from the last checkpoint, if there is one) "
                "with a lower --learning-rate or another --seed.")
        progress.loss.assign_add(loss)
        progress.accuracy.assign_add(accuracy)
        progress.seconds.assign_add(time.perf_counter() - started)
        progress.step.assign(i + 1)
        recent = (recent + [(loss, accuracy)])[-20:]
        bar.set_postfix(loss=f"{np.mean([r[0] for r in recent]):.3f}", acc=f"{np.mean([r[1] for r in recent]):.2f}")
        if save():
            bar.close()
            return False
    return True


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
          init: str | Path | None = None, resume: bool = False, command: str = "", workers: int = 1,
          checkpoint_minutes: float = 5.0, stop_after_minutes: float | None = None,
          stop_after_steps: int | None = None) -> Path | None:
    """Run the training; returns the exported SavedModel folder (out/model), or None where the run
    stopped early (stop_after_minutes or stop_after_steps) with a checkpoint that --resume continues.

    A checkpoint (weights, both optimizers, the moving average, the step and the epoch's running
    sums) is written every checkpoint_minutes and at each epoch's end. Batch k and its dropout
    are functions of (seed, k), so a resumed run goes on exactly as an uninterrupted one."""
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    records = [r for folder in crops for r in read_index(folder)]
    train_records, val_records, split_info = split_records(records, split or out / "split.csv", config)
    kwargs = sampler_kwargs(train_records, config)
    sampler = CropSampler(**kwargs)  # checks the crops here, before any worker starts
    if not resume or not (out / "self_blend_samples.png").exists():
        write_blend_samples(sampler, out / "self_blend_samples.png", config.seed)

    model = initial_model(init, config)
    schedule = learning_rate(config)
    optimizer = make_optimizer(config, schedule)
    head_optimizer = make_optimizer(config, config.head_learning_rate)
    progress = Progress.new()
    best_var = tf.Variable(-1.0, dtype=tf.float64)
    average = WeightAverage(model, config.ema) if config.ema > 0 else None
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, head_optimizer=head_optimizer,
                                     step=progress.step, loss_sum=progress.loss, accuracy_sum=progress.accuracy,
                                     seconds=progress.seconds, best=best_var,
                                     **({"average": average.state} if average else {}))
    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=2)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        print(f"resumed from {manager.latest_checkpoint} at step {int(progress.step.numpy())}", file=sys.stderr)
    head_steps, per_epoch = config.head_steps, config.steps_per_epoch
    total = head_steps + config.epochs * per_epoch
    done_epochs = max(0, int(progress.step.numpy()) - head_steps) // per_epoch
    log_path = out / "log.csv"
    log_rows = [row for row in read_log(log_path) if int(row["epoch"]) <= done_epochs] if resume else []

    started = last_save = time.monotonic()

    def save(force: bool = False) -> bool:
        """Checkpoint when it is time (or forced); True when the run is to stop here."""
        nonlocal last_save
        now = time.monotonic()
        stop = ((stop_after_steps is not None and int(progress.step.numpy()) >= stop_after_steps)
                or (stop_after_minutes is not None and now - started >= 60 * stop_after_minutes))
        if force or stop or now - last_save >= 60 * checkpoint_minutes:
            manager.save(checkpoint_number=int(progress.step.numpy()))
            last_save = now
        return stop

    stream = batches(kwargs, int(progress.step.numpy()), total, workers)
    try:
        if int(progress.step.numpy()) < head_steps:
            set_phase(model, "head", config)
            if not run_steps(step_function(model, head_optimizer, config), stream, progress, head_steps, config,
                             "head", save):
                return None
            print(f"head: loss {progress.loss.numpy() / head_steps:.3f}, "
                  f"accuracy {progress.accuracy.numpy() / head_steps:.2f}", file=sys.stderr)
            progress.reset()
            if save(force=True):
                return None
        set_phase(model, "all", config)
        if int(progress.step.numpy()) == head_steps:  # the whole network's phase starts (again: the same)
            progress.reset()
            if average:
                average.restart()
        step = step_function(model, optimizer, config, average)
        while int(progress.step.numpy()) < total:
            epoch = (int(progress.step.numpy()) - head_steps) // per_epoch
            if not run_steps(step, stream, progress, head_steps + (epoch + 1) * per_epoch, config,
                             f"epoch {epoch + 1}/{config.epochs}", save):
                return None
            with average.applied() if average else contextlib.nullcontext():
                metrics = validate(model, val_records)
                score = metrics.get("video_auc") or metrics.get("crop_auc") or 0.0
                if config.keep == "last" or score >= best_var.numpy() or not val_records:
                    best_var.assign(score)
                    model.save_weights(str(out / "best.weights.h5"))
                    atomic_write(out / "best.json", json.dumps({"epoch": epoch + 1, **metrics}, indent=1))
            loss, accuracy = progress.loss.numpy() / per_epoch, progress.accuracy.numpy() / per_epoch
            speed = per_epoch * config.batch_size / max(progress.seconds.numpy(), 1e-9)
            log_rows.append({
                "epoch": epoch + 1, "train_loss": f"{loss:.4f}", "train_accuracy": f"{accuracy:.4f}",
                **{f"val_{key}": _fmt(metrics.get(key)) for key in
                   ("crop_auc", "video_auc", "video_log_loss", "video_auc_blend", "video_auc_labelled")},
                "learning_rate": f"{float(schedule(optimizer.iterations)):.2e}",
                "seconds": f"{progress.seconds.numpy():.1f}", "crops_per_second": f"{speed:.1f}"})
            write_log(log_path, log_rows)
            plot_curves(log_rows, out / "curves.png")
            progress.reset()
            print(f"epoch {epoch + 1}: loss {loss:.3f}, val video AUC {_fmt(metrics.get('video_auc'))}, "
                  f"crop AUC {_fmt(metrics.get('crop_auc'))}, {speed:.1f} crops/s", file=sys.stderr)
            if save(force=True) and int(progress.step.numpy()) < total:
                return None
    finally:
        stream.close()

    model.load_weights(str(out / "best.weights.h5"))
    best = json.loads((out / "best.json").read_text())
    threshold = config.threshold or best.get("threshold", 0.5)
    card = {
        "name": f"deepfake-detector {config.arch}",
        "architecture": describe_init(config.arch, init),
        "trained_on": sorted({f"{r.dataset}/{r.method}" for r in train_records}),
        "split": {**split_info, "by": "source identity", "seed": config.seed, "file": "split.csv"},
        "validation": best,
        "config": asdict(config),
        "crop_views": total * config.batch_size,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    layers = head_layers(model)
    if len(layers) > 1:
        card["heads"] = ("two heads on one backbone: 'blend' trained on self-blends, 'labelled' on labelled fakes "
                         f"({config.labelled_share:.0%} of the pairs); p is the softmax of their logits' mean, "
                         "equal weights fixed before training")
        for layer in layers:  # each head alone, to be scored with the same tools as the fused network
            alone = keras.Model(model.input, keras.layers.Softmax(name="p")(layer.output))
            export(alone, out / "heads" / layer.name, threshold=0.5, card={**card, "name": f"{card['name']} ({layer.name} head alone)"})
    return export(model, out / "model", threshold=threshold, card=card)


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
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUT/checkpoints, at its very step")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes making batches beside the network (default 1; 0: in the training "
                             "process, one by one); the batches are the same whatever the number")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0,
                        help="write a checkpoint at least this often (default 5), and at each epoch's end")
    parser.add_argument("--stop-after-minutes", type=float, default=None,
                        help="stop with a checkpoint after this long; --resume goes on from there")
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
        folder = train(args.crops, args.out, config, args.split, args.init, args.resume, command, args.workers,
                       args.checkpoint_minutes, args.stop_after_minutes)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if folder is None:
        print(f"stopped with a checkpoint in {args.out / 'checkpoints'}: the same command with --resume goes on",
              file=sys.stderr)
        return 0
    print(f"exported {folder} (use it with: python app.py --model {folder} ...)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
