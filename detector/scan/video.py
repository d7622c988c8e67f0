"""Stage 1 — frames: sample evenly spaced RGB frames from a video (or read a still) with ffmpeg.

One ffmpeg process decodes the clip once and a `select` filter keeps the frames nearest each
target time, so we never seek per frame and memory is bounded by the frames kept, not the clip
length. Timestamps come from the stream itself (`showinfo`), so variable frame rate is honoured;
ffmpeg's default autorotation honours phone rotation metadata.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import importlib.resources
import logging
import math
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import ffmpeg
import numpy as np

from detector.runtime import cpu_cores
from detector.scan import limits
from detector.scan.headers import HeaderError, declared_size

log = logging.getLogger("detector")

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".gif"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

# Frames larger than this (longest side) are scaled down while decoding: an 8K frame would
# cost 100 MB each and faces that large lose nothing at 4K.
MAX_DECODE_SIDE = 3840
MAX_PIXELS = limits.MAX_MEGAPIXELS * 1_000_000  # declared pixels per frame or image (--max-megapixels)


class VideoError(Exception):
    """The input cannot be read as a video or image; the message says why, for the results row."""


@dataclass(frozen=True)
class VideoInfo:
    width: int  # as displayed, after rotation and any decode cap
    height: int
    duration: float  # seconds; 0 for a still image
    fps: float | None
    rotation: int  # degrees from the container's display matrix
    codec: str
    is_image: bool
    time_base: float | None = None  # seconds per unit of the stream's timestamps ("tbn"), where ffmpeg gives it


@dataclass(frozen=True)
class Frame:
    index: int  # position among the sampled frames
    time: float  # seconds from the start of the stream
    image: np.ndarray  # H×W×3 uint8 RGB


FFMPEG_ENV = "DETECTOR_FFMPEG"  # the path of another ffmpeg to run instead of the bundled one


class FfmpegError(Exception):
    """The ffmpeg to run is missing or does not run; the message says which and why."""


@dataclass(frozen=True)
class Ffmpeg:
    """The ffmpeg every stage runs, as each details JSON and the report's header record it."""
    path: str
    version: str  # as `ffmpeg -version` prints it: "n9.0.2-17-g2a571b6068-20260930", "5.1.8-0+deb12u1"


@functools.cache
def ffmpeg_binary() -> str:
    """$DETECTOR_FFMPEG when set, else the ffmpeg shipped inside imageio-ffmpeg (pinned in
    requirements.txt), whatever is on PATH: frames, their times and so p_fake depend on the build
    (Debian's 5.1 moved p_fake by up to 0.023), so a verdict must not depend on the machine."""
    chosen = os.environ.get(FFMPEG_ENV)
    if chosen:
        return chosen
    from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform

    name = FNAME_PER_PLATFORM.get(get_platform(), "")
    bundled = Path(importlib.resources.files("imageio_ffmpeg") / "binaries" / name)
    if not name or not bundled.is_file():
        raise FfmpegError(f"imageio-ffmpeg ships no ffmpeg for this platform ({get_platform()}): "
                          f"set {FFMPEG_ENV}=/path/to/ffmpeg")
    return str(bundled)


@functools.cache
def ffmpeg_info() -> Ffmpeg:
    """The ffmpeg to run and its version; FfmpegError if it does not run. The first call (at start)
    also warns, once, where this ffmpeg lacks something the scanner would use."""
    path = ffmpeg_binary()
    try:
        proc = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        named = f" ({FFMPEG_ENV})" if os.environ.get(FFMPEG_ENV) else ""
        raise FfmpegError(f"cannot run ffmpeg {path}{named}: {exc.strerror or exc}") from None
    match = re.search(r"version (\S+)", proc.stdout)
    if proc.returncode != 0 or match is None:
        raise FfmpegError(f"{path} is not an ffmpeg that runs (`{path} -version` exited {proc.returncode})")
    found = Ffmpeg(path, match[1])
    if not _drops_packets():
        log.warning("ffmpeg %s (%s) cannot drop unsampled frames before decoding (FFmpeg 7 or later can): "
                    "every frame is decoded, the same samples, more slowly", found.version, path)
    return found


@functools.cache
def _ffmpeg_version() -> tuple[int, int] | None:
    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-version"], capture_output=True, text=True).stdout
    match = re.search(r"version n?(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None  # None: a build from git, assumed recent


def _passthrough_args() -> list[str]:
    """Keep decoded frames as they are (no duplication/dropping); the flag was renamed in 5.1."""
    version = _ffmpeg_version()
    return ["-fps_mode", "passthrough"] if version is None or version >= (5, 1) else ["-vsync", "0"]


def _showinfo_options() -> dict[str, int]:
    """showinfo is read for each kept frame's time only; its checksums (Adler-32, mean and deviation
    of every plane, work over every pixel of every sample) are left out where the option exists
    (FFmpeg 5.0 and later are known to have it). bench/benchmark.py's decode stage measures the
    effect, together with DECODE_THREADS."""
    version = _ffmpeg_version()
    return {"checksum": 0} if version is None or version >= (5, 0) else {}


def probe(path: Path, max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """Read size, duration and rotation from ffmpeg's own description (no ffprobe needed).

    Nothing is decoded that declares more than `max_pixels` per frame: an image's header is read
    first (detector.scan.headers), and ffmpeg's decoders, which decode a frame or two to describe
    a stream, are held to the same limit, so a stream larger than its container says is caught too."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        height, width = _fit(_read_image(path, max_pixels)).shape[:2]
        return VideoInfo(width, height, 0.0, None, 0, path.suffix.lower()[1:], True)
    _check_file(path)
    _check_declared(path, max_pixels)  # a GIF's screen, or an image named like a video
    text = _run_ffmpeg(["-max_pixels", str(max_pixels), "-i", str(path.absolute())], "reading its header",
                       ceiling=120)
    if m := re.search(r"Picture size (\d+)x(\d+) (?:exceeds|is invalid)", text):  # a decoder refused a frame
        width, height = int(m[1]), int(m[2])
        _check_pixels(width, height, max_pixels, "a video frame declares")
        raise VideoError(f"a video frame declares {width} × {height} pixels, more than ffmpeg decodes")
    streams = re.findall(r"Stream #0:\d+.*?: Video: (\w+).*?, (\d+)x(\d+)", text)
    if not streams:
        if "Audio:" in text:
            raise VideoError("no video stream (audio only)")
        raise VideoError(_ffmpeg_reason(text) or "not a video ffmpeg can read")
    for _, w, h in streams:
        _check_pixels(int(w), int(h), max_pixels, "the video stream declares")
    codec, width, height = streams[0][0], int(streams[0][1]), int(streams[0][2])
    if width < 1 or height < 1:
        raise VideoError(f"invalid frame size {width}x{height}")
    rotation = 0
    if m := re.search(r"display ?matrix: rotation of (-?[\d.]+) degrees", text, re.IGNORECASE):
        rotation = int(round(float(m[1]))) % 360
    elif m := re.search(r"^\s*rotate\s*:\s*(-?\d+)", text, re.MULTILINE):
        rotation = int(m[1]) % 360
    if rotation in (90, 270):
        width, height = height, width
    scale = min(1.0, MAX_DECODE_SIDE / max(width, height))
    width, height = _even(width * scale), _even(height * scale)
    fps_match = re.search(r"([\d.]+) fps", text)
    tbn = re.search(r"(?<![\d.])(\d+)(k?) tbn", text)  # a whole number: 1/tbn is then the exact time base
    time_base = 1.0 / (int(tbn[1]) * (1000 if tbn[2] else 1)) if tbn and int(tbn[1]) > 0 else None
    duration = _duration(text) or _measure_duration(path)
    return VideoInfo(width, height, duration, float(fps_match[1]) if fps_match else None, rotation, codec, False,
                     time_base)


# Codecs whose decoders skip frames no other frame refers to (skip_frame=noref) correctly; a
# sampled frame then lands on the first decodable frame at or after its target (a frame or two
# later), for about a third less decoding (bench/benchmark.py measures it).
SKIP_UNREFERENCED_CODECS = frozenset({"h264", "hevc"})
# ffmpeg's decoding threads: a quarter of the cores (at least one). A batch decodes two inputs side
# by side while their faces are searched for and the model scores, so the cores are busy anyway; on
# 2 cores one thread each decodes with less CPU time than ffmpeg's own choice (frame threading's
# hand-offs cost time when no core is free; bench/benchmark.py's decode stage, docs/speed.md), and
# the frames are bit for bit the same (tests/test_video.py).
DECODE_THREADS = max(1, cpu_cores() // 4)
DECODE_AHEAD_BYTES = 128 << 20  # decoded frames held before ffmpeg waits: 21 frames of 1080p, 2 of the largest
# H.264 frames that no other frame refers to (nal_ref_idc 0) and that are not sampled are dropped
# before the decoder (the noise bitstream filter on the input, FFmpeg 7 and later): the sampled
# frames come out bit for bit as from a full decode, for about a third less decoding. A clip with
# more such frames than DROP_LIMIT is decoded in full: the filter tests every packet against each.
DROP_LIMIT = 1000
_PACKET = re.compile(r"trace_headers.*Packet: \d+ bytes.*?(?:, pts (-?\d+)|, no pts)")
_REF_IDC = re.compile(r"trace_headers.*nal_ref_idc\s+[01]+ = (\d+)")
_NAL_TYPE = re.compile(r"trace_headers.*nal_unit_type\s+[01]+ = (\d+)")


def sample_frames(path: Path, count: int, info: VideoInfo) -> Iterator[Frame]:
    """Yield up to `count` frames evenly spaced over the whole clip, in order, as they decode.

    Target k is at k·duration/count; each target keeps the first frame at or after it, so a
    one-frame clip still yields its frame and a gap in a VFR stream skips targets, never repeats.
    """
    with Decoding(path, count, info) as decoding:
        yield from decoding


class Decoding:
    """An input's sampled frames, decoding on threads from the moment it is made, so decoding
    overlaps the work on the frames already out. Iterate it once; close() stops ffmpeg."""

    def __init__(self, path: Path, count: int, info: VideoInfo, skip_unreferenced: bool = False,
                 drop_needless: bool = True, max_pixels: int = MAX_PIXELS):
        self.path, self.info, self.max_pixels = path, info, max_pixels
        self.skipped_unreferenced = skip_unreferenced and info.codec in SKIP_UNREFERENCED_CODECS
        # with frames dropped (DROP_LIMIT), the times the samples must have: else decode in full
        self.expected_times: list[float] | None = None
        if info.is_image:
            self._frames: Iterator[Frame] = iter([Frame(0, 0.0, _fit(_read_image(path, max_pixels)))])
            self._reader = None
            return
        # The 1e-6 s slack keeps a frame that falls exactly on a target (1.2 s vs 12 × 0.1 s in floating
        # point); the same slack in both places, and a step printed to 1e-9, so a frame kept for target k
        # always moves the next target past k (a GIF's 0.5 s frame for target 3 of 6 in 1 s did not).
        step = _select_step(info, count)
        select = f"if(gte(t+1e-6,ld(0)*{step}),st(0,floor((t+1e-6)/{step})+1))"
        # max_pixels: the decoder refuses any frame over the limit, whatever the probe saw
        options: dict[str, str] = {"threads": str(DECODE_THREADS), "max_pixels": str(max_pixels)}
        if self.skipped_unreferenced:
            options["skip_frame"] = "noref"
        if drop_needless and not self.skipped_unreferenced and (needless := _needless_packets(path, count, info)):
            options["bsf:v"], self.expected_times = _drop_filter(needless[0]), needless[1]
        source = ffmpeg.input(str(path.absolute()), **options)
        stream = (
            source
            .video.setpts("PTS-STARTPTS")
            .filter("select", select)
            .filter("showinfo", **_showinfo_options())
            .filter("scale", info.width, info.height)
            .output("pipe:", format="rawvideo", pix_fmt="rgb24", frames=count, an=None, sn=None)
        )
        args = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "info"]
        args += stream.get_args()[:-1] + _passthrough_args() + ["pipe:"]
        # frames queued: within DECODE_AHEAD_BYTES at any size (MAX_DECODE_SIDE keeps one frame under it)
        held = max(1, min(count, DECODE_AHEAD_BYTES // (info.width * info.height * 3)))
        self._reader = _FrameReader(args, info.width, info.height, held)
        self._frames = self._reader.frames()

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> "Decoding":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.cache
def _drops_packets() -> bool:
    """Whether this ffmpeg has the bitstream filters used to drop frames, and filters inputs (7.0+)."""
    version = _ffmpeg_version()
    if version is not None and version < (7, 0):
        return False
    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-bsfs"], capture_output=True, text=True).stdout.split()
    return "noise" in out and "trace_headers" in out


def _select_step(info: VideoInfo, count: int) -> str:
    """Seconds between sampling targets, as written into the select filter (to 1e-9)."""
    return f"{max(info.duration, 1e-3) / max(count, 1):.9f}"


def _needless_packets(path: Path, count: int, info: VideoInfo) -> tuple[list[int], list[float]] | None:
    """The pts of the H.264 packets that hold no sampled frame and that no other frame refers to,
    and the times the sampled frames will have; None where there is nothing to drop or it cannot
    be worked out (another codec or an older FFmpeg, packets without pts, an odd time base).

    ffmpeg's trace_headers filter reads the slice headers without decoding (a few hundredths of a
    second for a 10-s 1080p clip); the samples are chosen exactly as Decoding's select filter will.
    A long clip's headers are read only until there are clearly more than DROP_LIMIT to drop.
    """
    if info.is_image or info.codec != "h264" or not info.time_base or not _drops_packets():
        return None
    packets: list[list] = []  # [pts, referred to by another frame (None: no slice seen)]
    ref_idc, unreferenced = 0, 0
    with subprocess.Popen([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "info", "-i", str(path.absolute()),
                           "-map", "0:v:0", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, errors="replace", **CHILD) as proc, limits.kill_at_deadline(proc, "decoding"):
        for line in proc.stderr:
            if "trace_headers" not in line:
                continue
            if m := _PACKET.search(line):
                unreferenced += bool(packets) and packets[-1][1] is False
                if unreferenced > DROP_LIMIT + count:  # too many to drop whichever are sampled: stop reading
                    proc.kill()
                    return None
                packets.append([int(m[1]) if m[1] is not None else None, None])
            elif m := _REF_IDC.search(line):
                ref_idc = int(m[1])
            elif (m := _NAL_TYPE.search(line)) and packets and int(m[1]) in (1, 5):  # a slice
                packets[-1][1] = bool(packets[-1][1]) or ref_idc > 0
    if proc.wait() != 0 or not packets or any(pts is None for pts, _ in packets):
        return None
    in_order = sorted(pts for pts, _ in packets)
    step = float(_select_step(info, count))  # to the digit Decoding's select filter has it
    sampled, target = [], 0
    for pts in in_order:
        t = (pts - in_order[0]) * info.time_base
        if t + 1e-6 >= target * step:
            sampled.append(pts)
            target = math.floor((t + 1e-6) / step) + 1
            if len(sampled) == count:
                break
    keep = set(sampled)
    needless = [pts for pts, referred in packets if referred is False and pts not in keep]
    if not needless or len(needless) > DROP_LIMIT:
        return None
    return needless, [(pts - in_order[0]) * info.time_base for pts in sampled]


def _drop_filter(packets: list[int]) -> str:
    """The noise bitstream filter dropping exactly the packets with these pts. The sum of eq()s
    comes in groups of 40: FFmpeg's expression parser refuses a chain nested much deeper."""
    terms = [f"eq(pts\\,{pts})" for pts in packets]
    return "noise=drop=" + "+".join("(" + "+".join(terms[i:i + 40]) + ")" for i in range(0, len(terms), 40))


class _FrameReader:
    """Runs ffmpeg and reads frames on a thread, so decoding overlaps the caller's face work."""

    def __init__(self, args: list[str], width: int, height: int, held: int = 4):
        self.frame_bytes = width * height * 3
        self.shape = (height, width, 3)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     **CHILD)
        self.times: list[float] = []
        self.log: list[str] = []
        self.frames_q: queue.Queue = queue.Queue(maxsize=held)
        self.times_ready = threading.Condition()
        self.threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            if m := re.search(r"showinfo.*\bpts_time:\s*(-?[\d.e+-]+|nan)", line):
                with self.times_ready:
                    self.times.append(float(m[1]))
                    self.times_ready.notify_all()
            else:
                self.log.append(line)
        with self.times_ready:
            self.times_ready.notify_all()

    def _read_stdout(self) -> None:
        while True:
            data = self.proc.stdout.read(self.frame_bytes)
            if len(data) < self.frame_bytes:
                break
            self.frames_q.put(np.frombuffer(data, np.uint8).reshape(self.shape))
        self.frames_q.put(None)

    def _time_of(self, index: int) -> float:
        with self.times_ready:
            self.times_ready.wait_for(lambda: len(self.times) > index or not self.threads[0].is_alive(), timeout=5)
            return self.times[index] if len(self.times) > index else math.nan

    def frames(self) -> Iterator[Frame]:
        index = 0
        try:
            with limits.kill_at_deadline(self.proc, "decoding"):  # ffmpeg ends, and so do its frames
                while (image := self.frames_q.get()) is not None:
                    yield Frame(index, self._time_of(index), image)
                    index += 1
            self.proc.wait()
            self.threads[0].join()
            if index == 0:
                raise VideoError(_ffmpeg_reason("".join(self.log)) or "no frames could be decoded")
        finally:
            self.close()

    def close(self) -> None:
        """Stop ffmpeg and drain the queue, so the reader thread is not left blocked on it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        while self.threads[1].is_alive():
            try:
                self.frames_q.get(timeout=0.1)
            except queue.Empty:
                pass


def _check_file(path: Path) -> None:
    """Refuse what is not a regular file with something in it, without blocking: a FIFO or a
    device (a link to /dev/zero) is told by its mode before anything opens it."""
    if not path.exists():
        if not path.is_symlink():
            raise VideoError("file not found")
        try:
            path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise VideoError("symlink loop (the link points back to itself)") from None
        raise VideoError(f"broken symlink (points to {os.readlink(path)}, which does not exist)")
    if path.is_dir():
        raise VideoError("is a folder, not a file")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
        link = f"a symlink to {os.path.realpath(path)}, " if path.is_symlink() else ""
        raise VideoError(f"{link}{kind}, not a file: not read (it could block the batch or never end)")
    try:
        with path.open("rb") as handle:
            if not handle.read(1):
                raise VideoError("empty file (0 bytes)")
    except OSError as exc:
        raise VideoError(f"cannot open: {exc.strerror or exc}") from None


_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
IMAGE_FORMATS = ("JPEG", "PNG", "WebP", "BMP")  # what a still may hold: the formats whose size headers tells


def _read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a still, once its header has said its size is within `max_pixels`. Formats whose
    header is not read (TIFF, OpenEXR, ... which OpenCV would decode too) are refused, and so is
    a GIF, which is read as a video (.gif), not as a still."""
    _check_file(path)
    if _check_declared(path, max_pixels) not in IMAGE_FORMATS:
        raise VideoError("not an image that can be decoded (not a JPEG, PNG, WebP or BMP file)")
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation
    if image is None:
        raise VideoError("not an image that can be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: one copy of a large still, not two


def _check_declared(path: Path, max_pixels: int) -> str | None:
    """Refuse a file whose header declares more than `max_pixels`; its format ("PNG", ...), or
    None where it is not one detector.scan.headers reads."""
    try:
        declared = declared_size(path)
    except HeaderError as exc:
        raise VideoError(f"not an image that can be decoded: {exc}") from None
    except OSError as exc:
        raise VideoError(f"cannot open: {exc.strerror or exc}") from None
    if declared is None:
        return None
    _check_pixels(declared.width, declared.height, max_pixels, f"the {declared.format} image declares")
    return declared.format


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise VideoError(f"{what} {width} × {height} pixels ({width * height / 1e6:,.0f} megapixels), over the limit "
                         f"of {max_pixels / 1e6:g} megapixels (--max-megapixels raises it); not decoded")


def _run_ffmpeg(args: list[str], stage: str, ceiling: float) -> str:
    """ffmpeg's log (stderr) for these arguments; it is killed at the input's deadline (InputTimeout)
    or after `ceiling` seconds (VideoError)."""
    try:
        return subprocess.run([ffmpeg_binary(), "-hide_banner", "-nostdin", *args], capture_output=True, text=True,
                              errors="replace", timeout=limits.remaining(ceiling), **CHILD).stderr
    except subprocess.TimeoutExpired:
        limits.check(stage)
        raise VideoError(f"ffmpeg took over {ceiling:g} s {stage}") from None


def _die_with_parent() -> None:
    """Run in each ffmpeg child before ffmpeg starts (Linux): it is killed when the thread that
    started it ends, so a scanner killed outright (SIGKILL, the OOM killer) leaves no ffmpeg behind."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


if sys.platform == "linux":
    _libc, _PR_SET_PDEATHSIG = ctypes.CDLL(None, use_errno=True), 1
    CHILD: dict = {"preexec_fn": _die_with_parent}  # every ffmpeg the scanner starts: subprocess.run/Popen(**CHILD)
else:
    CHILD = {}


def _fit(image: np.ndarray) -> np.ndarray:
    scale = min(1.0, MAX_DECODE_SIDE / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def _even(value: float) -> int:
    """Scaled sizes stay even so 4:2:0 scaling never fails; a 1-pixel side stays 1."""
    return max(1, int(value) // 2 * 2) if value >= 2 else 1


def _duration(text: str) -> float | None:
    m = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if m is None:
        return None
    seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return seconds if seconds > 0 else None


def _measure_duration(path: Path) -> float:
    """Containers without a duration (raw streams, some WebM): remux to null and read the end time."""
    text = _run_ffmpeg(["-i", str(path.absolute()), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                       "measuring its duration", ceiling=600)
    times = re.findall(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if not times:
        return 0.0
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def _ffmpeg_reason(text: str) -> str:
    """The most telling line of ffmpeg's complaint, without its path prefix."""
    for pattern in ("moov atom not found", "Invalid data found", "Permission denied", "No such file",
                    "Too many levels of symbolic links", "does not contain any stream", "Error"):
        for line in text.splitlines():
            if pattern.lower() in line.lower():
                line = re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip())  # "[in#0 @ 0x55…] " changes every run
                reason = line.split(": ", 1)[-1].strip() if ": " in line else line
                if pattern == "moov atom not found":
                    reason += " (truncated, or not an MP4/MOV file)"
                return reason
    return ""
