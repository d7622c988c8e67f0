"""Stage 1 — frames: sampling, real timestamps, odd encodings and every kind of bad input."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import face_clip, ffmpeg
from detector.scan.video import MAX_DECODE_SIDE, VideoError, ffmpeg_binary, probe, sample_frames


def frames_of(path: Path, count: int):
    info = probe(path)
    return info, list(sample_frames(path, count, info))


def stream_times(path: Path) -> list[float]:
    """Every video frame's presentation time, read from the packets (framecrc), not from a decoder."""
    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                          "-f", "framecrc", "-"], capture_output=True, text=True, check=True).stdout
    tb = re.search(r"#tb 0: (\d+)/(\d+)", out)
    unit = int(tb[1]) / int(tb[2])
    pts = [int(line.split(",")[2]) for line in out.splitlines() if line and not line.startswith("#")]
    first = min(pts)
    return sorted((p - first) * unit for p in pts)


def ramp_source(rate: int, seconds: float, size: str = "64x48") -> list[str]:
    return ["-f", "lavfi", "-i", f"color=c=black:s={size}:r={rate}:d={seconds}"]


# Y = 16 + 100·t, so a decoded frame's brightness tells the time it was really shown at.
RAMP = "settb=1/1000,geq=lum='16+T*100':cb=128:cr=128,format=yuv420p"


def ramp_rgb(t: float) -> float:
    return 100.0 * t * 255.0 / 219.0  # limited-range luma to full-range RGB


@pytest.fixture(scope="module")
def vid(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("video")


@pytest.fixture(scope="module")
def ramp_clip(vid) -> Path:
    path = vid / "ramp.mp4"
    ffmpeg(*ramp_source(10, 2.0), "-vf", RAMP, "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


@pytest.fixture(scope="module")
def vfr_clip(vid) -> Path:
    """One second at 5 fps then one second at 20 fps, kept variable (no duplicated frames)."""
    path = vid / "vfr.mp4"
    ffmpeg(*ramp_source(5, 1.0), *ramp_source(20, 1.0), "-filter_complex", f"[0:v][1:v]concat=n=2:v=1,{RAMP}[v]",
           "-map", "[v]", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


def test_frames_evenly_spaced_over_whole_clip_with_real_times(ramp_clip):
    info, frames = frames_of(ramp_clip, 8)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert [f.index for f in frames] == list(range(8))
    times = [f.time for f in frames]
    step = info.duration / 8
    for k, t in enumerate(times):  # first frame at or after each target, within one frame (0.1 s)
        assert k * step - 1e-6 <= t < k * step + 0.1 + 1e-6
    assert times[-1] >= 1.7  # reaches the end of the clip, not just the start
    assert set(np.round(times, 4)) <= set(np.round(stream_times(ramp_clip), 4))
    for f in frames:  # the pixels are those shown at that time
        assert f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3)
        assert f.image.mean() == pytest.approx(ramp_rgb(f.time), abs=4)


def test_short_clip_gives_every_frame_once(vid):
    path = vid / "short.mp4"
    ffmpeg(*ramp_source(10, 0.5), "-vf", RAMP, "-c:v", "libx264", "-preset", "ultrafast", str(path))
    _, frames = frames_of(path, 32)
    assert len(frames) == 5
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-3)


def test_one_frame_clip(vid):
    path = vid / "one.mp4"
    ffmpeg(*ramp_source(10, 1.0), "-frames:v", "1", "-c:v", "libx264", str(path))
    info, frames = frames_of(path, 16)
    assert len(frames) == 1
    assert frames[0].time == pytest.approx(0.0)
    assert frames[0].image.shape == (info.height, info.width, 3) == (48, 64, 3)


def test_rotation_metadata_turns_frames_portrait(vid):
    land = vid / "land.mp4"
    # left half white, right half black
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=320x240:r=10:d=1", "-vf",
           "geq=lum='if(lt(X,W/2),235,16)':cb=128:cr=128,format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
           str(land))
    rotated = vid / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(land), "-c", "copy", str(rotated))
    info, frames = frames_of(rotated, 4)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (240, 320)
    image = frames[0].image
    assert image.shape == (320, 240, 3)
    # the white half is now the top or bottom half, not the left: the pixels were turned, not squeezed
    rows = image.mean(axis=(1, 2))
    cols = image.mean(axis=(0, 2))
    assert abs(rows[:150].mean() - rows[-150:].mean()) > 150
    assert abs(cols[:100].mean() - cols[-100:].mean()) < 20
    _, plain = frames_of(land, 1)
    assert plain[0].image.shape == (240, 320, 3)


def test_variable_frame_rate_times_match_the_stream(vfr_clip):
    stream = stream_times(vfr_clip)
    assert len(stream) == 25  # 5 + 20 frames: nothing was padded to a constant rate
    info, frames = frames_of(vfr_clip, 20)
    times = [f.time for f in frames]
    step = info.duration / 20
    # each sampled time is a real frame time, and the first one at or after its target
    assert all(min(abs(t - s) for s in stream) < 1e-3 for t in times)
    assert times == sorted(set(times))
    expected = sorted({min(s for s in stream if s >= k * step - 1e-6) for k in range(20)
                       if any(s >= k * step - 1e-6 for s in stream)})
    assert times == pytest.approx(expected, abs=1e-3)
    # the slow first second has only 5 frames to give; the fast one has a frame for each target
    assert [t for t in times if t < 0.99] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=1e-3)
    assert [t for t in times if t >= 0.99] == pytest.approx([1.0 + 0.1 * k for k in range(10)], abs=1e-3)
    for f in frames:
        assert f.image.mean() == pytest.approx(ramp_rgb(f.time), abs=4)


def _flat_clip(vid: Path, name: str, pix_fmt: str) -> Path:
    path = vid / name
    try:
        ffmpeg("-f", "lavfi", "-i", "color=c=0x3366CC:s=128x96:r=10:d=1", "-pix_fmt", pix_fmt,
               "-c:v", "libx264", "-preset", "ultrafast", str(path))
    except subprocess.CalledProcessError:
        pytest.skip(f"the bundled ffmpeg's libx264 cannot encode {pix_fmt}")
    return path


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p"])
def test_high_bit_depth_and_full_chroma_decode_to_true_colours(vid, pix_fmt):
    path = _flat_clip(vid, f"flat_{pix_fmt}.mp4", pix_fmt)
    info, frames = frames_of(path, 4)
    assert (info.width, info.height) == (128, 96)
    assert len(frames) == 4
    for f in frames:
        assert f.image.dtype == np.uint8
        assert f.image.reshape(-1, 3).mean(axis=0) == pytest.approx([0x33, 0x66, 0xCC], abs=6)


@pytest.mark.slow
def test_8k_frames_are_capped(vid):
    path = vid / "8k.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=7680x4320:rate=2:duration=1", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", str(path))
    info, frames = frames_of(path, 4)
    assert max(info.width, info.height) == MAX_DECODE_SIDE
    assert (info.width, info.height) == (3840, 2160)
    assert len(frames) == 2
    assert all(f.image.shape == (2160, 3840, 3) for f in frames)
    assert frames[0].image.std() > 20  # a real picture, not a blank buffer


def test_tiny_16x16(vid):
    path = vid / "tiny.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=16x16:rate=10:duration=1", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", str(path))
    info, frames = frames_of(path, 4)
    assert (info.width, info.height) == (16, 16)
    assert [f.image.shape for f in frames] == [(16, 16, 3)] * 4


# ---- bad inputs: each raises VideoError with a message a person can act on ----

def expect_error(path: Path, *words: str) -> str:
    with pytest.raises(VideoError) as caught:
        frames_of(path, 4)
    message = str(caught.value)
    assert message and "0x" not in message  # no memory addresses from ffmpeg's log prefix
    assert any(w.lower() in message.lower() for w in words), message
    return message


def test_a_clip_saying_30_fps_whose_timestamps_jump_is_sampled_at_its_real_times(vid):
    # 30 frames at 30 fps, then the timestamps jump 8 s; the container (Matroska) still says 30 fps.
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
           "-bf", "0", "-pix_fmt", "yuv420p", str(vid / "steady.mp4"))
    ffmpeg("-i", str(vid / "steady.mp4"), "-c", "copy", "-bsf:v", "setts=ts='TS+gte(N,30)*8/TB'", str(vid / "jumpy.mkv"))
    info, frames = frames_of(vid / "jumpy.mkv", 16)
    assert info.fps == 30 and info.duration == pytest.approx(10.0, abs=0.05)
    times = stream_times(vid / "jumpy.mkv")
    assert times[29:31] == pytest.approx([29 / 30, 9.0], abs=1e-3)
    step, target, expected = info.duration / 16, 0, []
    for t in times:  # each target takes the first frame at or after it: the gap skips targets
        if t + 1e-6 >= target * step:
            expected.append(t)
            target = int((t + 1e-6) // step) + 1
    assert [f.time for f in frames] == pytest.approx(expected[:16], abs=1e-3)
    assert len(frames) == len({f.time for f in frames}) < 16  # never a frame twice to fill the gap


def test_zero_byte_file(vid):
    (vid / "zero.mp4").write_bytes(b"")
    expect_error(vid / "zero.mp4", "empty")


@pytest.fixture(scope="module")
def small_mp4(vid) -> Path:
    path = vid / "small.mp4"
    ffmpeg(*ramp_source(10, 2.0), "-vf", RAMP, "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


def test_truncated_mp4_with_moov_at_end(vid, small_mp4):
    data = small_mp4.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # the index is at the end: half a file has none
    (vid / "half.mp4").write_bytes(data[: len(data) // 2])
    expect_error(vid / "half.mp4", "moov", "truncated")


def test_truncated_faststart_mp4_decodes_what_is_there(vid, small_mp4):
    fast = vid / "fast.mp4"
    ffmpeg("-i", str(small_mp4), "-c", "copy", "-movflags", "+faststart", str(fast))
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    (vid / "fast_half.mp4").write_bytes(data[: len(data) // 2])
    _, full = frames_of(fast, 10)
    _, part = frames_of(vid / "fast_half.mp4", 10)
    assert 1 <= len(part) < len(full) == 10
    for f in part:
        assert f.image.mean() == pytest.approx(ramp_rgb(f.time), abs=4)


def test_random_bytes_named_mp4(vid):
    (vid / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 40000, np.uint8).tobytes())
    expect_error(vid / "random.mp4", "moov", "invalid data", "not a video")


def test_audio_only(vid):
    for name in ("sine.m4a", "sine.mp4"):
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(vid / name))
        expect_error(vid / name, "audio")


def test_folder_named_like_a_video(vid):
    (vid / "x.mp4").mkdir()
    expect_error(vid / "x.mp4", "folder")


def test_broken_and_looping_symlinks(vid):
    os.symlink(vid / "nowhere.mp4", vid / "broken.mp4")
    expect_error(vid / "broken.mp4", "broken symlink")
    os.symlink("loop.mp4", vid / "loop.mp4")
    expect_error(vid / "loop.mp4", "loop", "symlink")


def test_missing_file(vid):
    expect_error(vid / "never-made.mp4", "not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_unreadable_file(vid, small_mp4):
    path = vid / "locked.mp4"
    path.write_bytes(small_mp4.read_bytes())
    path.chmod(0)
    try:
        expect_error(path, "permission")
    finally:
        path.chmod(0o644)


# ---- stills ----

@pytest.fixture(scope="module")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()


@pytest.mark.parametrize("ext,tolerance", [("png", 0.0), ("webp", 8.0), ("jpg", 8.0)])
def test_still_images(vid, astronaut, ext, tolerance):
    from PIL import Image

    path = vid / f"still.{ext}"
    Image.fromarray(astronaut).save(path, quality=95)
    info, frames = frames_of(path, 8)
    assert info.is_image and info.duration == 0.0 and (info.width, info.height) == (512, 512)
    assert len(frames) == 1 and frames[0].time == 0.0
    assert np.abs(frames[0].image.astype(float) - astronaut).mean() <= tolerance  # RGB, not BGR


def test_still_exif_orientation(vid):
    from PIL import Image

    image = np.zeros((200, 300, 3), np.uint8)
    image[:, :150] = 255  # stored landscape, left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(image).save(vid / "phone.jpg", exif=exif)
    info, frames = frames_of(vid / "phone.jpg", 1)
    assert (info.width, info.height) == (200, 300)
    shown = frames[0].image
    assert shown.shape == (300, 200, 3)
    assert shown[:100].mean() > 200 and shown[-100:].mean() < 50  # left side turned to the top


def test_broken_image(vid):
    (vid / "fake.jpg").write_bytes(b"not a jpeg at all")
    expect_error(vid / "fake.jpg", "image")


def test_huge_image_capped(vid):
    import cv2

    big = np.full((4320, 7680, 3), 90, np.uint8)
    cv2.imwrite(str(vid / "big.png"), big)
    info, frames = frames_of(vid / "big.png", 1)
    assert (info.width, info.height) == (3840, 2160)
    assert frames[0].image.shape == (2160, 3840, 3)


def test_face_clip_frames_move_with_the_face(media):
    """The conftest clip itself: 2 s at 15 fps, 30 frames, so 32 asked gives 30."""
    path = face_clip(media / "video_face.mp4")
    info, frames = frames_of(path, 32)
    assert (info.width, info.height) == (640, 480)
    assert len(frames) == 30
    assert [f.time for f in frames] == pytest.approx([i / 15 for i in range(30)], abs=1e-3)


@pytest.fixture(scope="module")
def b_frame_clip(vid) -> Path:
    """10 s at 30 fps with B-frames (libx264 veryfast, -bf 3): about 110 frames no other frame
    refers to, more than one group of the drop filter's terms."""
    return face_clip(vid / "bframes.mp4", seconds=10.0, fps=30, extra=("-preset", "veryfast", "-bf", "3"))


def decoded(path: Path, count: int, **options) -> tuple[list, list[float] | None]:
    from detector.scan.video import Decoding

    with Decoding(path, count, probe(path), **options) as decoding:
        return [(frame.time, frame.image) for frame in decoding], decoding.expected_times


def test_frames_nothing_needs_are_dropped_and_the_samples_are_a_full_decodes(b_frame_clip):
    from detector.scan.video import _needless_packets

    info = probe(b_frame_clip)
    needless, times = _needless_packets(b_frame_clip, 32, info)
    assert len(needless) > 40 and len(times) == 32  # over one group of the filter's terms
    fast, expected = decoded(b_frame_clip, 32)
    full, none = decoded(b_frame_clip, 32, drop_needless=False)
    assert none is None and expected == times
    assert [t for t, _ in fast] == [t for t, _ in full] == pytest.approx(times, abs=1e-3)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(fast, full))


def test_one_decoding_thread_gives_ffmpegs_own_choices_frames(b_frame_clip, monkeypatch):
    # DECODE_THREADS (one on a 2-core machine) against ffmpeg's automatic thread count: the same samples
    import detector.scan.video as video

    monkeypatch.setattr(video, "DECODE_THREADS", 1)
    one, _ = decoded(b_frame_clip, 32, drop_needless=False)
    monkeypatch.setattr(video, "DECODE_THREADS", 0)  # 0: ffmpeg picks
    auto, _ = decoded(b_frame_clip, 32, drop_needless=False)
    assert len(one) == len(auto) == 32
    assert all(a == b and np.array_equal(x, y) for (a, x), (b, y) in zip(one, auto))


def test_nothing_is_dropped_where_it_cannot_be_foreseen(vid, b_frame_clip, monkeypatch):
    from detector.scan import video

    no_b_frames = face_clip(vid / "no_b_frames.mp4", seconds=2.0)  # ultrafast: every frame is referred to
    assert video._needless_packets(no_b_frames, 8, probe(no_b_frames)) is None
    monkeypatch.setattr(video, "_drops_packets", lambda: False)  # FFmpeg before 7: no bitstream filters on inputs
    assert video._needless_packets(b_frame_clip, 32, probe(b_frame_clip)) is None
    monkeypatch.undo()
    monkeypatch.setattr(video, "DROP_LIMIT", 10)  # a long clip: the filter would test each packet too often
    assert video._needless_packets(b_frame_clip, 32, probe(b_frame_clip)) is None


def test_a_long_clips_headers_are_not_read_to_the_end(b_frame_clip, monkeypatch):
    # Past DROP_LIMIT + samples unreferenced frames nothing can be dropped: ffmpeg is stopped there.
    import signal
    import subprocess

    from detector.scan import video

    started, real_popen = [], subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(video.subprocess, "Popen", popen)
    monkeypatch.setattr(video, "DROP_LIMIT", 10)
    assert video._needless_packets(b_frame_clip, 4, probe(b_frame_clip)) is None
    assert started[-1].returncode == -signal.SIGKILL
    monkeypatch.setattr(video, "DROP_LIMIT", 1000)
    assert video._needless_packets(b_frame_clip, 4, probe(b_frame_clip)) is not None
    assert started[-1].returncode == 0


def test_samples_at_other_times_than_foreseen_are_decoded_again_in_full(b_frame_clip, monkeypatch):
    """Should the samples not come out at the foreseen times (an edit list the prediction missed,
    say), the scanner decodes the clip again with every frame, so it never scores other frames."""
    from detector.scan import video
    from detector.scan.faces import FaceDetector
    from detector.scan.scanner import extract_faces

    foresee, real_init, opened = video._needless_packets, video.Decoding.__init__, []

    def mistimed(*args):
        needless, times = foresee(*args)
        return needless, [t + 0.5 for t in times]

    def recording_init(self, *args, drop_needless: bool = True, **kwargs):
        opened.append(drop_needless)
        real_init(self, *args, drop_needless=drop_needless, **kwargs)

    monkeypatch.setattr(video, "_needless_packets", mistimed)
    monkeypatch.setattr(video.Decoding, "__init__", recording_init)
    detector = FaceDetector("cpu")
    found = extract_faces(b_frame_clip, detector, 8, 64)
    assert opened == [True, False]  # dropped, found mistimed, decoded again in full
    monkeypatch.undo()
    assert found.times == extract_faces(b_frame_clip, detector, 8, 64).times


def test_an_ffmpeg_refusing_the_drop_filter_decodes_in_full(b_frame_clip, monkeypatch):
    from detector.scan import video
    from detector.scan.faces import FaceDetector
    from detector.scan.scanner import extract_faces

    detector = FaceDetector("cpu")
    expected = extract_faces(b_frame_clip, detector, 8, 64).times
    monkeypatch.setattr(video, "_drop_filter", lambda packets: "no_such_filter")
    assert extract_faces(b_frame_clip, detector, 8, 64).times == expected


# ---- which ffmpeg runs: the bundled one, or DETECTOR_FFMPEG's ----

def _choose_ffmpeg_again() -> None:
    """Forget the ffmpeg chosen and what it can do (found out once per process)."""
    from detector.scan import video

    for cache in (video.ffmpeg_binary, video.ffmpeg_info, video._ffmpeg_version, video._drops_packets):
        cache.cache_clear()


@pytest.fixture
def fresh_ffmpeg(monkeypatch):
    """The choice of ffmpeg made afresh, and again after the test."""
    from detector.scan import video

    _choose_ffmpeg_again()
    yield video
    monkeypatch.undo()  # the environment back before the choice is made again
    _choose_ffmpeg_again()


def _script(path: Path, text: str) -> Path:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def test_the_bundled_ffmpeg_runs_whatever_ffmpeg_is_on_path(fresh_ffmpeg, ramp_clip, tmp_path, monkeypatch):
    import imageio_ffmpeg

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ffmpeg", "ffprobe"):  # a foreign ffmpeg first on PATH, which would leave a mark
        _script(bin_dir / name, f"touch {tmp_path}/ran; exit 1\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("DETECTOR_FFMPEG", raising=False)
    info = fresh_ffmpeg.ffmpeg_info()
    assert Path(info.path).parent == Path(imageio_ffmpeg.__file__).parent / "binaries"
    assert info.version.startswith("n9.")  # the build imageio-ffmpeg 0.8.1 ships (requirements.txt)
    assert len(list(sample_frames(ramp_clip, 4, probe(ramp_clip)))) == 4
    assert not (tmp_path / "ran").exists()


def test_an_older_ffmpeg_named_by_detector_ffmpeg_says_so_once_and_gives_the_same_frames(
        fresh_ffmpeg, b_frame_clip, tmp_path, monkeypatch, caplog):
    # The bundled build, saying it is 5.1 (Debian 12's): the frame-dropping path needs 7.0 and is
    # off, said once at start; every frame is decoded and the samples are those of the dropping path.
    bundled = fresh_ffmpeg.ffmpeg_binary()
    dropping, _ = decoded(b_frame_clip, 32)
    old = _script(tmp_path / "ffmpeg-5.1", 'for a in "$@"; do [ "$a" = -version ] && '
                                           '{ echo "ffmpeg version 5.1.2-3 Copyright (c)"; exit 0; }; done\n'
                                           f'exec {bundled} "$@"\n')
    monkeypatch.setenv("DETECTOR_FFMPEG", str(old))
    _choose_ffmpeg_again()
    with caplog.at_level("WARNING", logger="detector"):
        assert fresh_ffmpeg.ffmpeg_info() == fresh_ffmpeg.Ffmpeg(str(old), "5.1.2-3")
        fresh_ffmpeg.ffmpeg_info()
    assert [r.getMessage() for r in caplog.records] == [
        f"ffmpeg 5.1.2-3 ({old}) cannot drop unsampled frames before decoding (FFmpeg 7 or later can): "
        "every frame is decoded, the same samples, more slowly"]
    assert fresh_ffmpeg._needless_packets(b_frame_clip, 32, probe(b_frame_clip)) is None
    full, expected = decoded(b_frame_clip, 32)
    assert expected is None and len(full) == len(dropping) == 32
    assert all(a == b and np.array_equal(x, y) for (a, x), (b, y) in zip(full, dropping))


def test_a_detector_ffmpeg_that_does_not_run_is_one_clear_error(fresh_ffmpeg, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTOR_FFMPEG", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(fresh_ffmpeg.FfmpegError, match=f"cannot run ffmpeg {tmp_path / 'no-ffmpeg'}.*No such file"):
        fresh_ffmpeg.ffmpeg_info()
    monkeypatch.setenv("DETECTOR_FFMPEG", str(_script(tmp_path / "false", "exit 3\n")))
    _choose_ffmpeg_again()
    with pytest.raises(fresh_ffmpeg.FfmpegError, match="is not an ffmpeg that runs"):
        fresh_ffmpeg.ffmpeg_info()


FOREIGN = next((p for p in ("/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg") if os.access(p, os.X_OK)), None)


@pytest.mark.skipif(FOREIGN is None, reason="no system ffmpeg installed (.ci/run installs Debian's)")
def test_the_systems_ffmpeg_named_by_detector_ffmpeg_samples_the_same_times(fresh_ffmpeg, b_frame_clip, monkeypatch):
    bundled = [t for t, _ in decoded(b_frame_clip, 32)[0]]
    monkeypatch.setenv("DETECTOR_FFMPEG", FOREIGN)
    _choose_ffmpeg_again()
    assert fresh_ffmpeg.ffmpeg_info().path == FOREIGN
    assert [t for t, _ in decoded(b_frame_clip, 32)[0]] == pytest.approx(bundled, abs=1e-3)


def test_rows_made_by_another_ffmpeg_carry_its_version_in_the_resume_key(fresh_ffmpeg, brightness_model, tmp_path,
                                                                         monkeypatch):
    import detector

    monkeypatch.delenv("DETECTOR_FFMPEG", raising=False)
    pinned = detector.load(brightness_model, "cpu", runtime="tensorflow").settings_key
    other = _script(tmp_path / "ffmpeg-7", 'for a in "$@"; do [ "$a" = -version ] && '
                                           '{ echo "ffmpeg version 7.1-test Copyright (c)"; exit 0; }; done\n'
                                           f'exec {fresh_ffmpeg.ffmpeg_binary()} "$@"\n')
    monkeypatch.setenv("DETECTOR_FFMPEG", str(other))
    _choose_ffmpeg_again()
    chosen = detector.load(brightness_model, "cpu", runtime="tensorflow").settings_key
    assert "ffmpeg" not in pinned  # rows made by the pinned ffmpeg before this key existed still resume
    assert chosen == pinned + ";ffmpeg=7.1-test"



# ---- files made to hurt: refused from what they declare, before anything decodes them ----

import hostile  # noqa: E402
from detector.scan import limits  # noqa: E402
from detector.scan.headers import declared_size  # noqa: E402


@pytest.mark.parametrize("name,make,side", [
    ("bomb.png", hostile.png_bomb, 20000), ("bomb.jpg", hostile.jpeg_bomb, 30000),
    ("bomb.webp", hostile.webp_bomb, 16000), ("bomb.bmp", hostile.bmp_bomb, 20000),
    ("bomb.gif", hostile.gif_bomb, 20000),
])
def test_an_image_declaring_a_huge_size_is_refused_undecoded(vid, monkeypatch, name, make, side):
    path = make(vid / name, side=side)
    assert path.stat().st_size < 64 << 10
    assert (declared_size(path).width, declared_size(path).height) == (side, side)
    import cv2

    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded"))
    message = expect_error(path, "over the limit")
    assert f"{side} × {side}" in message and "100 megapixels" in message and "--max-megapixels" in message


def test_a_higher_pixel_limit_lets_a_large_image_through(vid):
    import cv2

    cv2.imwrite(str(vid / "wide.png"), np.zeros((200, 300, 3), np.uint8))
    with pytest.raises(VideoError, match="300 × 200 pixels"):
        probe(vid / "wide.png", max_pixels=50_000)
    assert probe(vid / "wide.png", max_pixels=60_000).width == 300


def test_headers_are_read_as_their_decoders_read_them(vid):
    """Sizes from every format and variant, an EXIF thumbnail's SOF skipped, a RIFF that is AVI."""
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    frames = [Image.new("RGB", (64, 48), (i * 40, 0, 0)) for i in range(3)]
    image.save(vid / "h.webp", quality=80)
    image.save(vid / "h_lossless.webp", lossless=True)
    frames[0].save(vid / "h_anim.webp", save_all=True, append_images=frames[1:])
    frames[0].save(vid / "h_anim.png", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 1
    image.save(vid / "h_exif.jpg", exif=exif, progressive=True)
    image.save(vid / "h.bmp")
    image.save(vid / "h.gif")
    for name in ("h.webp", "h_lossless.webp", "h_anim.webp", "h_anim.png", "h_exif.jpg", "h.bmp", "h.gif"):
        found = declared_size(vid / name)
        assert (found.width, found.height) == (64, 48), name
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=0.5", "-c:v", "mjpeg", str(vid / "h.avi"))
    assert declared_size(vid / "h.avi") is None  # RIFF, but not WebP


def test_a_still_in_a_format_whose_header_is_not_read_is_refused(vid):
    from PIL import Image

    Image.new("RGB", (64, 48)).save(vid / "tiff.jpg", format="TIFF")  # OpenCV would decode it, unchecked
    expect_error(vid / "tiff.jpg", "not a JPEG, PNG, WebP or BMP")


@pytest.mark.parametrize("side", [30000, 15000])  # past ffmpeg's own limit, and within it
def test_an_mp4_whose_stream_declares_a_huge_frame_is_refused_in_its_probe(vid, side):
    path = hostile.stream_bomb_mp4(vid / f"stream{side}.mp4", side=side)
    message = expect_error(path, "over the limit")
    assert f"{side} × {side}" in message


def test_an_animated_gif_of_10000_frames_gives_its_samples(vid):
    path = hostile.many_frames_gif(vid / "many.gif")
    info, frames = frames_of(path, 8)
    assert info.duration == pytest.approx(100.0, abs=0.5) and len(frames) == 8


def test_an_mp4_valid_for_its_first_megabyte_and_random_after(vid):
    path = hostile.random_after(vid / "rotten.mp4", hostile.noise_clip(vid / "noise.mp4", seconds=1.5))
    try:
        _, frames = frames_of(path, 8)
        assert frames  # what the valid part holds
    except VideoError as exc:
        assert str(exc)


@pytest.mark.parametrize("make,words", [(hostile.fifo, "FIFO"), (hostile.link_to_dev_zero, "/dev/zero")])
def test_a_fifo_or_a_link_to_dev_zero_is_refused_without_opening_it(vid, make, words):
    path = make(vid / f"{make.__name__}.mp4")
    message = expect_error(path, words)
    assert "not a file" in message
    expect_error(make(vid / f"{make.__name__}.png"), words)  # the still path too


def _children() -> set[int]:
    """This process's child processes (ffmpeg's), from /proc."""
    return {int(pid) for pid in os.listdir("/proc") if pid.isdigit() and
            Path(f"/proc/{pid}/stat").exists() and _parent_of(pid) == os.getpid()}


def _parent_of(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_a_decoding_that_outlives_the_deadline_is_stopped_and_its_ffmpeg_killed(fresh_ffmpeg, ramp_clip, tmp_path,
                                                                                 monkeypatch):
    import time

    slow = _script(tmp_path / "ffmpeg-slow", f'exec {fresh_ffmpeg.ffmpeg_binary()} -readrate 0.01 "$@"\n')
    info = probe(ramp_clip)
    monkeypatch.setenv("DETECTOR_FFMPEG", str(slow))
    fresh_ffmpeg.ffmpeg_binary.cache_clear()
    before = _children()  # what else this process runs (a Ray test's raylet, say) is not ours to judge
    started = time.monotonic()
    with limits.deadline(1.0), pytest.raises(limits.InputTimeout, match="decoding"):
        list(sample_frames(ramp_clip, 8, info))  # 2 s of clip read at 1% speed: 200 s unbounded
    assert time.monotonic() - started < 10
    assert not _children() - before  # killed and reaped
