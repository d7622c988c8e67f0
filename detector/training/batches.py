"""Training batches: pairs of a real crop and a fake from the same source, made by step number.

Batch k is a pure function of (seed, k): its random numbers come from `default_rng([seed, k])`.
So batches can be made in worker processes, in any order, and a run resumed at step k gets the
very batches it would have had; the number of workers never changes what a run learns.

Workers are processes, not threads: self-blending, augmentation and PNG decoding hold the GIL
often enough to slow TensorFlow's step when they share its process. This module imports no
TensorFlow, so a worker starts in a second and holds only crops, regions and meshes, each decoded
once and kept (bench/train_speed.py says how much memory that is).
"""
from __future__ import annotations

import collections
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.data.crops import CropRecord
from detector.training.augment import AugmentConfig, augment, h264_roundtrip
from detector.training.selfblend import cut, self_blend

SBI_MODES = ("off", "mix", "only", "heads")
BLEND_HEAD, LABELLED_HEAD = 0, 1


@dataclass(frozen=True)
class Batch:
    """batch_size/2 reals, then their fakes in the same order (real i and fake i are a pair)."""
    x: np.ndarray  # N×H×W×3 uint8 RGB
    y: np.ndarray  # N int32: 0 real, 1 fake
    head: np.ndarray  # N int32: the head whose loss the crop counts in (BLEND_HEAD unless --sbi heads)


class CropSampler:
    """Balanced, augmented batches of pairs: a real crop and a fake from the same source.

    A self-blended fake is made from a real face's source region and comes with that very face
    (as the paper pairs them), so the two differ only by the blend; a labelled fake comes with a
    real crop of its source. Both crops of a pair get the same augmentation and re-encoding, so
    nothing but the fake's traces tells them apart.

    `sbi`: "off" labelled fakes only; "mix" half of each source's fakes self-blended; "only" no
    labelled fakes; "heads" self-blend pairs for the first head and, `labelled_share` of each
    batch, labelled pairs for the second (see networks.build_detector)."""

    def __init__(self, records: list[CropRecord], batch_size: int, sbi: str, seed: int, h264_p: float,
                 labelled_share: float = 0.0, augmentation: AugmentConfig = AugmentConfig()):
        if batch_size % 2:
            raise ValueError(f"--batch-size must be even (pairs of a real and a fake), got {batch_size}")
        if sbi not in SBI_MODES:
            raise ValueError(f"--sbi must be one of {', '.join(SBI_MODES)}, got {sbi!r}")
        self.reals: dict[str, list[CropRecord]] = {}
        self.fakes: dict[str, list[CropRecord]] = {}
        for record in records:
            if record.label == 1 and sbi == "only":
                continue
            (self.fakes if record.label == 1 else self.reals).setdefault(record.dataset, []).append(record)
        if not self.reals:
            raise ValueError("training needs real crops (self-blended fakes are made from them)")
        # Reals with a source region and a face mesh are the ones self-blends are made from.
        self.blendable = {d: [r for r in pool if r.mesh is not None] for d, pool in self.reals.items()}
        if sbi != "off" and not any(self.blendable.values()):
            raise ValueError(f"--sbi {sbi} needs real crops with source regions and face meshes: "
                             "build the crops again (deepfake-detector crops) into a new --out")
        if sbi == "off" and not self.fakes:
            raise ValueError("--sbi off needs labelled fake crops")
        fakes_of = {"off": lambda d: self.fakes.get(d), "only": lambda d: self.blendable[d],
                    "heads": lambda d: self.blendable[d],
                    "mix": lambda d: self.fakes.get(d) or self.blendable[d]}[sbi]
        self.sources, self.weights = self._weighted(fakes_of)
        if not self.sources:
            raise ValueError("--sbi off needs real and fake crops from the same source")
        self.labelled_sources, self.labelled_weights = self._weighted(self.fakes.get)
        self.n_labelled = round(batch_size // 2 * labelled_share) if sbi == "heads" else 0
        if self.n_labelled and not self.labelled_sources:
            raise ValueError("--sbi heads needs real and labelled fake crops from the same source")
        self.batch_size, self.sbi, self.seed, self.h264_p = batch_size, sbi, seed, h264_p
        self.augmentation = augmentation
        self._cache: dict[Path, np.ndarray] = {}

    def _weighted(self, fakes_of) -> tuple[list[str], np.ndarray]:
        """The sources that have reals and fakes_of(source), weighted by the square root of their
        number of clips or photos: a pool of thousands of photos does not drown a few dozen clips,
        nor are those clips repeated until they are learnt by heart."""
        sources = sorted(d for d in self.reals if fakes_of(d))
        sizes = np.array([len({r.video for r in self.reals[d] + self.fakes.get(d, [])}) for d in sources])
        return sources, np.sqrt(sizes) / np.sqrt(sizes).sum() if sources else np.zeros(0)

    def _read(self, path: Path, load) -> np.ndarray:
        """Crops, regions and meshes, each decoded once and kept: they are read again and again."""
        if path not in self._cache:
            self._cache[path] = load()
        return self._cache[path]

    def image(self, record: CropRecord) -> np.ndarray:
        return self._read(record.crop, record.image)

    def region(self, record: CropRecord) -> np.ndarray:
        return self._read(record.region, record.region_image)

    def mesh(self, record: CropRecord) -> np.ndarray:
        return self._read(record.mesh, lambda: np.load(record.mesh))

    @staticmethod
    def _pick(pool: list[CropRecord], rng: np.random.Generator) -> CropRecord:
        return pool[rng.integers(len(pool))]

    def _blend_pair(self, source: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A real face and its self-blend, cut the scanner's way."""
        record = self._pick(self.blendable[source], rng)
        size = self.image(record).shape[0]
        blend = self_blend(self.region(record), self.mesh(record), rng)
        return cut(blend.real, record.region_box, size), cut(blend.fake, record.region_box, size)

    def _labelled_pair(self, source: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.image(self._pick(self.reals[source], rng)), self.image(self._pick(self.fakes[source], rng))

    def _pair(self, source: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(real, fake) crops of one source: --sbi mix: half the time a labelled fake; off: always."""
        labelled, blendable = self.fakes.get(source), self.blendable[source]
        if self.sbi in ("off", "mix") and labelled and (self.sbi == "off" or not blendable or rng.random() < 0.5):
            return self._labelled_pair(source, rng)
        return self._blend_pair(source, rng)

    def batch(self, step: int) -> Batch:
        """The batch of training step `step` (0-based), the same whenever and wherever it is made."""
        rng = np.random.default_rng([self.seed, step])
        n = self.batch_size // 2
        n_blend = n - self.n_labelled
        sources = [self.sources[i] for i in rng.choice(len(self.sources), size=n_blend, p=self.weights)]
        pairs = [self._pair(source, rng) for source in sources]
        if self.n_labelled:
            picks = rng.choice(len(self.labelled_sources), size=self.n_labelled, p=self.labelled_weights)
            pairs += [self._labelled_pair(self.labelled_sources[i], rng) for i in picks]
        seeds = rng.integers(2**63, size=n)  # one augmentation per pair, drawn alike for both
        x = np.stack([augment(pair[k], np.random.default_rng(seed), self.augmentation)
                      for k in (0, 1) for pair, seed in zip(pairs, seeds)])
        recode = np.flatnonzero(rng.random(n) < self.h264_p)
        if len(recode):
            both = np.concatenate([recode, recode + n])
            x[both] = h264_roundtrip(x[both], int(rng.integers(18, 41)))
        head = np.array([BLEND_HEAD] * n_blend + [LABELLED_HEAD] * self.n_labelled, np.int32)
        return Batch(x, np.array([0] * n + [1] * n, np.int32), np.concatenate([head, head]))


_worker_sampler: CropSampler | None = None


def _start_worker(kwargs: dict) -> None:
    global _worker_sampler
    _worker_sampler = CropSampler(**kwargs)


def _worker_batch(step: int) -> Batch:
    return _worker_sampler.batch(step)


def batches(sampler_kwargs: dict, first: int, last: int, workers: int = 1):
    """Batches first..last-1 in order, made by `workers` processes ahead of the network (0: here,
    one by one). The processes are spawned, never forked from a process that runs TensorFlow."""
    if workers <= 0:
        sampler = CropSampler(**sampler_kwargs)
        for step in range(first, last):
            yield sampler.batch(step)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(sampler_kwargs,)) as pool:
        ahead: collections.deque = collections.deque()
        step = first
        try:
            while step < last or ahead:
                while step < last and len(ahead) < 3 * workers:
                    ahead.append(pool.submit(_worker_batch, step))
                    step += 1
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()
