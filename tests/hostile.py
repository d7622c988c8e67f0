"""Files made to hurt, kept small: each declares far more than it holds, or is not a file at all.

Used by the tests and by bench/hostile_inputs.py (which measures what each costs the scanner).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from synthetic import ffmpeg


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A PNG declaring side × side grey pixels; its IDAT holds a few rows of zeros (a decoder
    allocates the whole image before it finds the data short)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (side + 1) * 8, 9)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
                           + _png_chunk(b"IEND", b""))
    return Path(path)


def _small(ext: str, params: tuple[int, ...] = ()) -> bytearray:
    ok, data = cv2.imencode(ext, np.full((48, 64, 3), 128, np.uint8), list(params))
    assert ok
    return bytearray(data.tobytes())


def jpeg_bomb(path: Path, side: int = 30000) -> Path:
    """A 64 × 48 JPEG whose SOF0 says side × side."""
    data = _small(".jpg")
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    Path(path).write_bytes(data)
    return Path(path)


def webp_bomb(path: Path, side: int = 16000) -> Path:
    """A lossless (VP8L) WebP of 64 × 48 whose header says side × side (14 bits: 16384 at most)."""
    data = _small(".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))
    at = data.index(b"VP8L") + 8
    assert data[at] == 0x2F
    bits = int.from_bytes(data[at + 1:at + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | (side - 1) | ((side - 1) << 14)
    data[at + 1:at + 5] = bits.to_bytes(4, "little")
    Path(path).write_bytes(data)
    return Path(path)


def bmp_bomb(path: Path, side: int = 20000) -> Path:
    data = _small(".bmp")
    data[18:26] = struct.pack("<ii", side, -side)  # top-down: a negative height
    Path(path).write_bytes(data)
    return Path(path)


def gif_bomb(path: Path, side: int = 20000) -> Path:
    """A one-frame GIF whose logical screen, the canvas a decoder allocates, is side × side."""
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:d=0.1", "-frames:v", "1", str(path))
    data = bytearray(Path(path).read_bytes())
    data[6:10] = struct.pack("<HH", side, side)
    Path(path).write_bytes(data)
    return Path(path)


def stream_bomb_mp4(path: Path, side: int = 30000) -> Path:
    """An MP4 whose container says 64 × 48 and whose (PNG-coded) frames say side × side: at 15000
    the pinned ffmpeg, unbounded, took 0.7 GB to probe it and 2.7 GB to decode it."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=1", "-c:v", "png", "-f", "mov", str(path))
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"IHDR")
    while at >= 0:
        data[at + 4:at + 12] = struct.pack(">II", side, side)
        data[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 17])))
        at = data.find(b"IHDR", at + 4)
    Path(path).write_bytes(data)
    return Path(path)


def many_frames_gif(path: Path, frames: int = 10000) -> Path:
    """An animated GIF of `frames` 16 × 16 frames at 100 fps."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc=s=16x16:r=100:d={frames / 100}", "-frames:v", str(frames), str(path))
    return Path(path)


def random_after(path: Path, clip: Path, valid: int = 1 << 20) -> Path:
    """A faststart copy of `clip` whose bytes after the first `valid` are random (the clip must be
    longer than that)."""
    fast = Path(path).with_suffix(".faststart.mov")
    ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "+faststart", "-f", "mov", str(fast))
    data = fast.read_bytes()
    fast.unlink()
    assert len(data) > valid, f"{clip} is too short for {valid} valid bytes"
    noise = np.random.default_rng(0).integers(0, 256, len(data) - valid, np.uint8).tobytes()
    Path(path).write_bytes(data[:valid] + noise)
    return Path(path)


def noise_clip(path: Path, seconds: float = 1.0) -> Path:
    """A clip of random pixels, encoded losslessly: over 1 MB a second at 320 × 240."""
    ffmpeg("-f", "lavfi", "-i", f"nullsrc=s=320x240:r=25:d={seconds}", "-vf", "geq=random(1)*255:128:128",
           "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(path))
    return Path(path)


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return Path(path)


def link_to_dev_zero(path: Path) -> Path:
    os.symlink("/dev/zero", path)
    return Path(path)
