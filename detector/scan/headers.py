"""The frame size an image file declares, read from its header without decoding a pixel.

A 1 MB PNG can declare 20,000 × 20,000 pixels, rows of zeros that compress a thousandfold; a
decoder allocates all of it before it finds out. Reading the few bytes that state the size lets
the scanner refuse such a file first (detector.scan.video). The formats are told by their first
bytes, not their names, and each is parsed as its decoder parses it: PNG's IHDR, JPEG's first
SOFn segment (APPn segments, EXIF thumbnails among them, skipped by their lengths, stray bytes
between segments skipped as libjpeg does), WebP's VP8X canvas and every VP8/VP8L/ANMF frame in it,
BMP's info header, GIF's logical screen.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# A JPEG's segments before its SOF (EXIF, ICC profiles, thumbnails) are skipped, this many at most.
MAX_SEGMENTS = 1000
# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class Declared:
    format: str  # "PNG", "JPEG", "WebP", "BMP" or "GIF"
    width: int  # the largest any part of the header declares (a WebP's canvas or one of its frames)
    height: int


class HeaderError(Exception):
    """A known format whose header is cut short or gives no size; the message says which."""


def declared_size(path: Path) -> Declared | None:
    """The size the image in `path` declares; None where it is none of the formats above.
    HeaderError where it is one of them but its header gives no size."""
    with open(path, "rb") as handle:
        head = handle.read(32)
        for magic, name, parse in _FORMATS:
            if head.startswith(magic) and (name != "WebP" or head[8:12] == b"WEBP"):  # AVI is RIFF too
                handle.seek(0)
                try:
                    width, height = parse(handle)
                except (struct.error, ValueError) as exc:
                    raise HeaderError(f"a {name} file whose header gives no frame size ({exc})") from None
                return Declared(name, width, height)
    return None


def _read(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) < size:
        raise ValueError("cut short")
    return data


def _png(handle: BinaryIO) -> tuple[int, int]:
    _read(handle, 8)
    length, kind = struct.unpack(">I4s", _read(handle, 8))
    if kind != b"IHDR" or length < 8:
        raise ValueError("no IHDR chunk first")
    return struct.unpack(">II", _read(handle, 8))


def _jpeg(handle: BinaryIO) -> tuple[int, int]:
    _read(handle, 2)  # SOI
    for _ in range(MAX_SEGMENTS):
        byte = _read(handle, 1)
        while byte != b"\xff":  # stray bytes before a marker: libjpeg skips them too
            byte = _read(handle, 1)
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            marker = _read(handle, 1)[0]
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # a stuffed byte, TEM, RSTn or SOI: no length follows
        if marker in (0xD9, 0xDA):
            raise ValueError("image data before any SOF segment")
        (length,) = struct.unpack(">H", _read(handle, 2))
        if marker in _JPEG_SOF:
            _, height, width = struct.unpack(">BHH", _read(handle, 5))
            return width, height
        if length < 2:
            raise ValueError("a segment shorter than its length field")
        handle.seek(length - 2, 1)
    raise ValueError(f"no SOF segment in its first {MAX_SEGMENTS} segments")


def _webp(handle: BinaryIO) -> tuple[int, int]:
    """RIFF chunks: the VP8X canvas and every frame's own size, the largest of them; a frame
    bigger than the canvas is the kind of disagreement a decoder may trust."""
    riff_size = struct.unpack("<4sI4s", _read(handle, 12))[1]
    end, width, height, seen = min(riff_size + 8, 1 << 32), 0, 0, False
    while handle.tell() + 8 <= end:
        header = handle.read(8)
        if len(header) < 8:
            break
        kind, size = struct.unpack("<4sI", header)
        start = handle.tell()
        found = _webp_chunk(kind, _read(handle, min(size, 30)) if kind in _WEBP_SIZED else b"")
        if found:
            width, height, seen = max(width, found[0]), max(height, found[1]), True
        handle.seek(start + size + (size & 1))  # chunks are padded to an even length
    if not seen:
        raise ValueError("no VP8, VP8L or VP8X chunk")
    return width, height


_WEBP_SIZED = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ANMF"})


def _webp_chunk(kind: bytes, data: bytes) -> tuple[int, int] | None:
    if kind == b"VP8X" or kind == b"ANMF":  # 24-bit width - 1 and height - 1 (after X and Y in a frame)
        at = 4 if kind == b"VP8X" else 6
        if len(data) < at + 6:
            raise ValueError(f"a {kind.decode()} chunk cut short")
        return (int.from_bytes(data[at:at + 3], "little") + 1, int.from_bytes(data[at + 3:at + 6], "little") + 1)
    if kind == b"VP8 ":  # a key frame: 3-byte tag, start code, 14-bit width and height
        if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
            raise ValueError("a VP8 chunk without a key frame header")
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":  # signature 0x2f, then 14-bit width - 1 and height - 1
        if len(data) < 5 or data[0] != 0x2F:
            raise ValueError("a VP8L chunk without its signature")
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _bmp(handle: BinaryIO) -> tuple[int, int]:
    _read(handle, 14)
    (info_size,) = struct.unpack("<I", _read(handle, 4))
    if info_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", _read(handle, 4))
    width, height = struct.unpack("<ii", _read(handle, 8))
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _gif(handle: BinaryIO) -> tuple[int, int]:
    """The logical screen, the canvas ffmpeg's decoder allocates (frames beyond it are cropped)."""
    _read(handle, 6)
    return struct.unpack("<HH", _read(handle, 4))


_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "PNG", _png),
    (b"\xff\xd8", "JPEG", _jpeg),
    (b"RIFF", "WebP", _webp),
    (b"BM", "BMP", _bmp),
    (b"GIF87a", "GIF", _gif),
    (b"GIF89a", "GIF", _gif),
)
