"""Training augmentation for face crops (numpy/cv2, RGB uint8).

The ops target what varies between datasets and platforms rather than between
real and fake: framing, colour, sharpness, resolution, sensor noise,
re-compression (JPEG per crop, H.264 per batch) and occlusion. Randomising them
stops the detector from keying on any of these: clips reach users re-encoded
and down-scaled by the platforms they passed through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Probability of each op and the ranges its strength is drawn from."""

    crop_p: float = 0.5
    crop_scale: tuple[float, float] = (0.7, 1.0)  # area fraction kept
    crop_ratio: tuple[float, float] = (0.9, 1.1)  # aspect ratio w/h of the crop
    flip_p: float = 0.5
    colour_p: float = 0.8
    brightness: float = 0.2  # factor drawn from 1 +- this
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03  # fraction of the hue circle
    blur_p: float = 0.15
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    downscale_p: float = 0.25
    downscale: tuple[float, float] = (0.35, 0.9)  # side factor before scaling back up
    noise_p: float = 0.1
    noise_std: tuple[float, float] = (2.0, 8.0)  # in 0..255 units
    cutout_p: float = 0.2
    cutout_size: tuple[float, float] = (0.1, 0.4)  # side as a fraction of the image side
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 95)


def _random_resized_crop(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    h, w = image.shape[:2]
    area = rng.uniform(*config.crop_scale) * h * w
    ratio = np.exp(rng.uniform(*np.log(config.crop_ratio)))  # log-uniform: symmetric in w/h
    cw = min(w, max(1, round(np.sqrt(area * ratio))))
    ch = min(h, max(1, round(np.sqrt(area / ratio))))
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    return cv2.resize(image[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _colour_jitter(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    shift = round(rng.uniform(-config.hue, config.hue) * 180)  # OpenCV hue is 0..179
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)

    out *= rng.uniform(1 - config.brightness, 1 + config.brightness)
    grey = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = (out - grey.mean()) * rng.uniform(1 - config.contrast, 1 + config.contrast) + grey.mean()
    grey = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = grey[..., None] + (out - grey[..., None]) * rng.uniform(1 - config.saturation, 1 + config.saturation)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _downscale(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Lose resolution as a small or up-scaled face in a low-resolution clip does."""
    h, w = image.shape[:2]
    factor = rng.uniform(*config.downscale)
    small = cv2.resize(image, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)


def _gaussian_noise(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    std = rng.uniform(*config.noise_std)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(std)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def _cutout(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    h, w = image.shape[:2]
    ch = max(1, round(rng.uniform(*config.cutout_size) * h))
    cw = max(1, round(rng.uniform(*config.cutout_size) * w))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    out = image.copy()
    if rng.random() < 0.5:
        out[y : y + ch, x : x + cw] = image.mean(axis=(0, 1)).round().astype(np.uint8)
    else:
        out[y : y + ch, x : x + cw] = rng.integers(0, 256)
    return out


def _jpeg(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    # OpenCV's encoder assumes BGR; convert so chroma subsampling hits the right channels.
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Randomly augment an RGB uint8 HxWx3 image; same shape and dtype out.

    Geometry first, then photometric ops, then occlusion, and JPEG last
    because compression is the final step a real video goes through.
    Deterministic for a given rng state.
    """
    out = image
    if rng.random() < config.crop_p:
        out = _random_resized_crop(out, rng, config)
    if rng.random() < config.flip_p:
        out = np.ascontiguousarray(out[:, ::-1])  # OpenCV rejects negative strides
    if rng.random() < config.colour_p:
        out = _colour_jitter(out, rng, config)
    if rng.random() < config.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*config.blur_sigma))
    if rng.random() < config.downscale_p:
        out = _downscale(out, rng, config)
    if rng.random() < config.noise_p:
        out = _gaussian_noise(out, rng, config)
    if rng.random() < config.cutout_p:
        out = _cutout(out, rng, config)
    if rng.random() < config.jpeg_p:
        out = _jpeg(out, rng, config)
    return out.copy() if out is image else out  # never hand back the caller's buffer


def h264_roundtrip(images: np.ndarray, crf: int, preset: str = "veryfast") -> np.ndarray:
    """Encode N×H×W×3 RGB crops as one H.264 clip (yuv420p, 25 fps) at `crf` and decode them back.

    A platform's re-encode blurs fine texture, blocks and smears chroma in ways JPEG does not;
    one ffmpeg call per batch keeps the cost to a few tens of milliseconds.
    """
    import subprocess

    from detector.scan.video import ffmpeg_binary

    n, h, w, _ = images.shape
    even = np.pad(images, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p needs even sides
    encode = [ffmpeg_binary(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{even.shape[2]}x{even.shape[1]}",
              "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
              "-f", "h264", "-"]
    stream = subprocess.run(encode, input=np.ascontiguousarray(even).tobytes(), capture_output=True, check=True).stdout
    decode = [ffmpeg_binary(), "-v", "error", "-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(decode, input=stream, capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, even.shape[1], even.shape[2], 3)
    if len(frames) != n:
        raise RuntimeError(f"H.264 round trip returned {len(frames)} frames for {n}")
    return frames[:, :h, :w].copy()
