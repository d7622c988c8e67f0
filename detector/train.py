"""Train an EfficientNetV2-B0 deepfake detector on face-crop datasets and export it for the scanner.

    python -m detector.train --crops work/crops_videos --crops work/crops_lfw --out work/run

Batches are balanced: half real crops, half fakes, where a fake is either a labelled fake crop
or a self-blended image made on the fly from a real crop (`--sbi`). Self-blends teach the
blending boundary every face swap leaves, rather than one method's fingerprint, which is what
lets a detector trained on few clips say something about manipulations it has never seen.
Validation (crop- and video-level AUC) runs every epoch on clips held out by source identity;
the best epoch is exported as a SavedModel in the original model's format with a model.json
contract and data card.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch  # noqa: F401  — before tensorflow, always (see detector.model)
from tqdm import tqdm

from detector.augment import augment
from detector.crops import CropRecord, read_index
from detector.datasets import LabelledVideo, read_split, split_by_identity, write_split
from detector.model import quiet_native_stderr
from detector.report import compute_metrics, pick_threshold
from detector.results import atomic_write
from detector.selfblend import sample_grid, self_blend
from detector.video import IMAGE_EXTENSIONS

with quiet_native_stderr():
    import tensorflow as tf
    import tf_keras as keras

SBI_MODES = ("off", "mix", "only")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 16
    optimizer: str = "adam"  # or "sgd" (momentum 0.9, nesterov)
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    sbi: str = "mix"  # off: labelled fakes only; mix: half of the fakes self-blended; only: no labelled fakes
    dropout: float = 0.2
    label_smoothing: float = 0.05
    input_size: int = 224
    val_fraction: float = 0.25
    val_crops_per_video: int = 16  # evenly spaced: enough for a video's mean, cheap every epoch
    seed: int = 0


def build_model(input_size: int = 224, dropout: float = 0.2) -> keras.Model:
    """EfficientNetV2-B0 behind the original model's contract: RGB in [0,1], 2-way softmax, 1 = fake.

    Keras's EfficientNetV2 rescales 0–255 input itself, so a Rescaling(255) layer adapts the
    [0,1] contract; the named input keeps the serving signature stable ("image").
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Rescaling(255.0, name="to_0_255")(inputs)
    backbone = keras.applications.EfficientNetV2B0(
        include_top=False, weights=None, input_shape=(input_size, input_size, 3),
        include_preprocessing=True, pooling="avg")
    x = backbone(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="p")(x)
    return keras.Model(inputs, outputs, name="deepfake_efficientnetv2_b0")


def initial_model(init: Path | None, config: TrainConfig) -> keras.Model:
    """A new network, or one to fine-tune: a SavedModel folder (tf_keras) or a weights file."""
    if init is None:
        return build_model(config.input_size, config.dropout)
    if init.is_dir():
        return keras.models.load_model(str(init), compile=False)
    model = build_model(config.input_size, config.dropout)
    model.load_weights(str(init))
    return model


class CropSampler:
    """Balanced, augmented training batches from crop records."""

    def __init__(self, records: list[CropRecord], config: TrainConfig, rng: np.random.Generator):
        self.reals = [r for r in records if r.label == 0]
        self.fakes = [r for r in records if r.label == 1] if config.sbi != "only" else []
        # Real video crops and real photos are drawn equally often: were photos the bulk of the
        # reals, "looks like a still photo" would become a shortcut for "real".
        photos = [r for r in self.reals if Path(r.video).suffix.lower() in IMAGE_EXTENSIONS]
        clips = [r for r in self.reals if Path(r.video).suffix.lower() not in IMAGE_EXTENSIONS]
        self.real_pools = [pool for pool in (clips, photos) if pool]
        if not self.reals:
            raise ValueError("training needs real crops (self-blended fakes are made from them)")
        if config.sbi == "off" and not self.fakes:
            raise ValueError("--sbi off needs labelled fake crops")
        self.config, self.rng = config, rng
        self._cache: dict[Path, np.ndarray] = {}

    def _image(self, record: CropRecord) -> np.ndarray:
        """Crops are small (224² PNG): keep them decoded after the first use."""
        if record.crop not in self._cache:
            self._cache[record.crop] = record.image()
        return self._cache[record.crop]

    def _pick(self, pool: list[CropRecord]) -> CropRecord:
        return pool[self.rng.integers(len(pool))]

    def _real(self) -> CropRecord:
        return self._pick(self.real_pools[self.rng.integers(len(self.real_pools))])

    def fake(self) -> np.ndarray:
        use_sbi = self.config.sbi == "only" or not self.fakes or (self.config.sbi == "mix" and self.rng.random() < 0.5)
        if use_sbi:
            record = self._real()
            return self_blend(self._image(record), record.landmarks, self.rng)[0]
        return self._image(self._pick(self.fakes))

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        half = self.config.batch_size // 2
        images = [self._image(self._real()) for _ in range(self.config.batch_size - half)]
        images += [self.fake() for _ in range(half)]
        labels = np.array([0] * (self.config.batch_size - half) + [1] * half)
        x = np.stack([augment(image, self.rng) for image in images]).astype(np.float32) / 255.0
        return x, labels


def predict(model: keras.Model, records: list[CropRecord], batch_size: int = 32) -> np.ndarray:
    scores = []
    for start in range(0, len(records), batch_size):
        x = np.stack([r.image() for r in records[start:start + batch_size]]).astype(np.float32) / 255.0
        scores.append(model(x, training=False).numpy()[:, 1])
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
    """Train/val crops by source identity: from a split file, else a new seeded split, written down."""
    videos = {r.video: LabelledVideo(Path(r.video), r.label, r.dataset, r.method, r.identities) for r in records}
    if split is not None and split.exists():
        train_v, val_v = read_split(split)
    else:
        # Photos only ever train: validation is about video clips.
        photos = [v for v in videos.values() if v.path.suffix.lower() in IMAGE_EXTENSIONS]
        clips = [v for v in videos.values() if v.path.suffix.lower() not in IMAGE_EXTENSIONS]
        train_v, val_v = split_by_identity(clips, config.val_fraction, config.seed)
        train_v += photos
        if split is not None:
            write_split(split, train_v, val_v)
    val_paths = {str(v.path) for v in val_v}
    train = [r for r in records if r.video not in val_paths]
    val = []
    for video in sorted(val_paths):
        crops = [r for r in records if r.video == video]
        step = max(1, len(crops) // config.val_crops_per_video)
        val += crops[::step][:config.val_crops_per_video]
    info = {"train_videos": len({r.video for r in train}), "val_videos": len(val_paths & set(videos)),
            "train_crops": len(train), "val_crops": len(val)}
    return train, val, info


def learning_rate(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    total = config.epochs * config.steps_per_epoch
    cosine = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(1, total - config.warmup_steps), alpha=0.01)

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up, then cosine decay: the ramp keeps the first updates of a fresh network small."""
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warm = config.learning_rate * (step + 1) / max(1, config.warmup_steps)
            return tf.where(step < config.warmup_steps, warm, cosine(step - config.warmup_steps))

    return WarmupCosine()


def train(crops: list[Path], out: Path, config: TrainConfig, split: Path | None = None, init: Path | None = None,
          resume: bool = False, command: str = "") -> Path:
    """Run the training; returns the exported SavedModel folder (out/model)."""
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    records = [r for folder in crops for r in read_index(folder)]
    train_records, val_records, split_info = split_records(records, split or out / "split.csv", config)
    sampler = CropSampler(train_records, config, rng)
    sample_grid([(r.image(), r.landmarks) for r in sampler.reals[:: max(1, len(sampler.reals) // 6)][:6]],
                out / "self_blend_samples.png", seed=config.seed)

    model = initial_model(init, config)
    schedule = learning_rate(config)
    optimizer = (keras.optimizers.Adam(schedule) if config.optimizer == "adam"
                 else keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True))
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    epoch_var = tf.Variable(0, dtype=tf.int64)
    best_var = tf.Variable(-1.0, dtype=tf.float64)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var, best=best_var)
    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=1)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} after epoch {int(epoch_var.numpy())}", file=sys.stderr)
        rng = np.random.default_rng([config.seed, int(epoch_var.numpy())])
        sampler.rng = rng

    log_path = out / "log.csv"
    log_rows = log_path.read_text().splitlines()[1:] if resume and log_path.exists() else []
    header = "epoch,train_loss,train_accuracy,val_crop_auc,val_video_auc,val_video_log_loss,learning_rate,seconds,crops_per_second"
    for epoch in range(int(epoch_var.numpy()), config.epochs):
        started = time.perf_counter()
        losses, accuracies = [], []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", file=sys.stderr)
        for _ in bar:
            x, y = sampler.batch()
            loss, accuracy = model.train_on_batch(x, keras.utils.to_categorical(y, 2))
            losses.append(loss)
            accuracies.append(accuracy)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", acc=f"{np.mean(accuracies[-20:]):.2f}")
        seconds = time.perf_counter() - started
        metrics = validate(model, val_records)
        score = metrics.get("video_auc") or metrics.get("crop_auc") or 0.0
        if score >= best_var.numpy() or not val_records:
            best_var.assign(score)
            model.save_weights(str(out / "best.weights.h5"))
            atomic_write(out / "best.json", json.dumps({"epoch": epoch + 1, **metrics}, indent=1))
        lr = float(schedule(optimizer.iterations))
        log_rows.append(",".join(str(v) for v in (
            epoch + 1, f"{np.mean(losses):.4f}", f"{np.mean(accuracies):.4f}", _fmt(metrics.get("crop_auc")),
            _fmt(metrics.get("video_auc")), _fmt(metrics.get("video_log_loss")), f"{lr:.2e}", f"{seconds:.1f}",
            f"{config.steps_per_epoch * config.batch_size / seconds:.1f}")))
        atomic_write(log_path, "\n".join([header, *log_rows]) + "\n")
        plot_curves(log_path, out / "curves.png")
        epoch_var.assign(epoch + 1)
        manager.save()
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, val video AUC {_fmt(metrics.get('video_auc'))}, "
              f"crop AUC {_fmt(metrics.get('crop_auc'))}, {config.steps_per_epoch * config.batch_size / seconds:.1f} crops/s",
              file=sys.stderr)

    model.load_weights(str(out / "best.weights.h5"))
    best = json.loads((out / "best.json").read_text())
    card = {
        "name": "deepfake-detector EfficientNetV2-B0",
        "architecture": "EfficientNetV2-B0 (tf_keras), from scratch" if init is None else f"EfficientNetV2-B0 fine-tuned from {init}",
        "trained_on": sorted({f"{r.dataset}/{r.method}" for r in train_records}),
        "split": {**split_info, "by": "source identity", "seed": config.seed, "file": "split.csv"},
        "validation": best,
        "config": asdict(config),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    return export(model, out / "model", threshold=best.get("threshold", 0.5), card=card)


def export(model: keras.Model, folder: Path, threshold: float, card: dict) -> Path:
    """SavedModel in the original format (tf_keras: saved_model.pb, keras_metadata.pb, variables/),
    no optimizer state, plus model.json: the contract the scanner reads and the data card."""
    model.save(str(folder), include_optimizer=False)
    contract = {"input_size": int(model.input_shape[1]), "input_range": [0.0, 1.0], "output": "softmax",
                "fake_index": 1, "threshold": round(float(threshold), 4), **card}
    atomic_write(folder / "model.json", json.dumps(contract, indent=1) + "\n")
    return folder


def plot_curves(log_path: Path, png: Path) -> None:
    from matplotlib.figure import Figure

    rows = [line.split(",") for line in log_path.read_text().splitlines()[1:]]
    epochs = [int(r[0]) for r in rows]
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [float(r[1]) for r in rows], marker="o", label="train loss")
    left.set_xlabel("epoch")
    left.legend()
    for column, name in ((3, "val crop AUC"), (4, "val video AUC")):
        values = [float(r[column]) if r[column] else np.nan for r in rows]
        right.plot(epochs, values, marker="o", label=name)
    right.set_ylim(0, 1)
    right.set_xlabel("epoch")
    right.legend()
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(png)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m detector.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, action="append", required=True,
                        help="crop dataset folder from python -m detector.crops (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: log, curves, checkpoints, model/")
    parser.add_argument("--split", type=Path, default=None,
                        help="split CSV to use (written there if missing; default OUT/split.csv)")
    parser.add_argument("--init", type=Path, default=None, help="SavedModel folder or .weights.h5 to start from")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if name in ("optimizer", "sbi"):
            parser.add_argument(flag, choices=("adam", "sgd") if name == "optimizer" else SBI_MODES, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    args = parser.parse_args(argv)
    config = TrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"training on {device}: {config}", file=sys.stderr)
    command = "python -m detector.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    folder = train(args.crops, args.out, config, args.split, args.init, args.resume, command)
    print(f"exported {folder} (use it with: python app.py --model {folder} ...)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
