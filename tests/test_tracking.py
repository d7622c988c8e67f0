"""Face tracking between full-frame passes, fast decoding and inputs worked on side by side:
shortcuts that must find the same faces, with the same boxes, and give the same verdicts."""
from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
import pytest

from detector.api import load
from conftest import face_clip
from detector.scan.faces import FaceDetector
from detector.scan.tracking import FaceTracker, link_tracks
from detector.scan.scanner import extract_faces, open_input

WIDTH, HEIGHT, SIDE = 640, 360, 150


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def frame_with(astronaut: np.ndarray, *corners: tuple[int, int]) -> np.ndarray:
    """A grey frame with the astronaut at each (x, y) corner; later ones cover earlier ones."""
    frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for i, (x, y) in enumerate(corners):
        frame[y:y + SIDE, x:x + SIDE] = astronaut if i % 2 == 0 else astronaut[:, ::-1]
    return frame


def run(tracker: FaceTracker, frames: list[np.ndarray]) -> list[list]:
    return [tracker(frame, i) for i, frame in enumerate(frames)]


def centres(faces) -> list[float]:
    return sorted((f.box[0] + f.box[2]) / 2 for f in faces)


def test_follows_a_moving_face_with_a_full_pass_every_eighth_frame(detector, astronaut):
    frames = [frame_with(astronaut, (40 + 12 * i, 100 + 2 * i)) for i in range(24)]
    tracker = FaceTracker(detector, every=8)
    tracked = run(tracker, frames)
    full = run(FaceTracker(detector, every=1), frames)
    assert tracker.full_passes == 3
    assert all(len(faces) == 1 for faces in tracked)
    for near, everywhere in zip(tracked, full):  # the boxes of a full pass, not just close to them
        assert np.abs(np.array(near[0].box) - np.array(everywhere[0].box)).max() < 0.01


def test_a_face_entering_mid_clip_is_found_by_the_next_full_pass(detector, astronaut):
    frames = [frame_with(astronaut, (40, 100)) if i < 10 else frame_with(astronaut, (40, 100), (440, 100))
              for i in range(24)]
    tracker = FaceTracker(detector, every=8)
    counts = [len(faces) for faces in run(tracker, frames)]
    assert counts[:16] == [1] * 16  # frames 10–15 follow the face already known
    assert counts[16:] == [2] * 8  # the full pass at frame 16 finds the newcomer, and it is followed


def test_a_face_that_jumps_away_is_found_again_in_the_same_frame(detector, astronaut):
    frames = [frame_with(astronaut, (40, 100))] * 4 + [frame_with(astronaut, (450, 150))] * 4
    tracker = FaceTracker(detector, every=8)
    tracked = run(tracker, frames)
    assert tracker.full_passes == 2  # frame 0, and frame 4 where the face was lost
    assert [len(faces) for faces in tracked] == [1] * 8
    assert centres(tracked[4])[0] > 450


def test_a_face_leaving_its_search_region_gets_a_full_pass_and_the_same_box(detector, astronaut):
    # 100 px a frame: the new box no longer lies inside the old one grown by half its side
    frames = [frame_with(astronaut, (20 + 100 * i, 100)) for i in range(5)]
    tracker = FaceTracker(detector, every=8)
    tracked = run(tracker, frames)
    full = run(FaceTracker(detector, every=1), frames)
    assert tracker.full_passes == 5
    for near, everywhere in zip(tracked, full):
        assert np.abs(np.array(near[0].box) - np.array(everywhere[0].box)).max() < 0.01


def test_after_two_failed_near_searches_whole_frames_are_searched_until_the_next_full_pass(
        detector, astronaut, monkeypatch):
    # A face jumping 100 px a frame, back and forth: each near search fails and costs a full pass on
    # top, so after two, frames 3-7 get full passes straight away; frame 8 is a scheduled full pass.
    frames = [frame_with(astronaut, (20 + 100 * (4 - abs(4 - i % 8)), 100)) for i in range(10)]
    near_searches = []
    detect_near = detector.detect_near
    monkeypatch.setattr(detector, "detect_near", lambda image, index, boxes: near_searches.append(index)
                        or detect_near(image, index, boxes))
    tracker = FaceTracker(detector, every=8)
    tracked = run(tracker, frames)
    assert near_searches == [1, 2, 9] and tracker.full_passes == 10
    full = run(FaceTracker(detector, every=1), frames)
    assert [f[0].box for f in tracked] == [f[0].box for f in full]


def test_two_faces_crossing_keep_their_count_and_tracks(detector, astronaut):
    # Two faces walk towards each other, pass (the second covers the first for a few frames) and part.
    frames = [frame_with(astronaut, (20 + 19 * i, 100), (470 - 19 * i, 110)) for i in range(24)]
    tracked = run(FaceTracker(detector, every=8), frames)
    full = run(FaceTracker(detector, every=1), frames)
    assert [len(faces) for faces in tracked] == [len(faces) for faces in full]
    assert min(len(faces) for faces in full) == 1 and max(len(faces) for faces in full) == 2
    for near, everywhere in zip(tracked, full):
        assert np.abs(np.array(centres(near)) - np.array(centres(everywhere))).max() < 0.01
    flat = [face for faces in tracked for face in faces]
    assert len(set(link_tracks(flat))) == len(set(link_tracks([face for faces in full for face in faces])))


def test_where_following_faces_does_not_pay_every_frame_gets_a_full_pass(media, detector, monkeypatch):
    """On a GPU (follows_faces False) full passes over batches of frames are cheaper than searching
    near faces frame by frame, and they give the same boxes: --detect-every then searches every frame."""
    clip = face_clip(media / "every.mp4", seconds=1.0)
    followed = []
    monkeypatch.setattr(detector, "follows_faces", False)
    monkeypatch.setattr(detector, "detect_near", lambda *args: followed.append(args))
    found = extract_faces(clip, detector, 8, 64, detect_every=8)
    assert followed == [] and len(found.crops) == 8


def test_fast_decoding_samples_within_a_few_frames_of_exact_and_falls_back_on_short_clips(media, detector):
    clip = face_clip(media / "gop.mp4", seconds=4.0, fps=25, extra=("-preset", "veryfast", "-bf", "3"))
    decoding = open_input(clip, 16, fast_decode=True)
    assert decoding.skipped_unreferenced
    fast = extract_faces(decoding, detector, 16, 64)
    exact = extract_faces(clip, detector, 16, 64)  # by default every frame is decoded
    assert len(fast.times) == len(exact.times) == 16
    assert np.abs(np.array(fast.times) - np.array(exact.times)).max() <= 3 / 25 + 1e-6
    assert np.all(np.diff(fast.times) > 0)
    # 1 s at 10 fps: 10 frames for 16 targets, fewer still without the unreferenced ones: the
    # scanner notices and decodes every frame, so no frame is lost
    short = face_clip(media / "short.mp4", seconds=1.0, fps=10, extra=("-preset", "veryfast", "-bf", "3"))
    assert len(extract_faces(open_input(short, 16, fast_decode=True), detector, 16, 64).times) == 10


def test_scan_many_works_on_inputs_side_by_side(brightness_model, media, monkeypatch):
    import threading
    import time

    from detector.scan import scanner as pipeline

    scanner = load(brightness_model, device="cpu", frames=4)
    clip = face_clip(media / "side.mp4", seconds=1.0)
    lock, busy, most = threading.Lock(), [0], [0]
    extract = pipeline.extract_faces

    def counting(*args, **kwargs):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.3)
        try:
            return extract(*args, **kwargs)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(pipeline, "extract_faces", counting)
    assert [r.status for r in scanner.scan_many([clip] * 5)] == ["ok"] * 5
    assert most[0] == pipeline.FACE_WORKERS == 2


def test_scan_many_keeps_order_and_stops_its_ffmpeg(brightness_model, media, tmp_path):
    scanner = load(brightness_model, device="cpu", frames=8)
    clip = face_clip(media / "ahead.mp4", seconds=1.0)
    missing = tmp_path / "missing.mp4"
    paths = [clip, missing, clip, media / "ahead.mp4"]
    many = list(scanner.scan_many(paths))
    assert [r.status for r in many] == ["ok", "unreadable", "ok", "ok"]
    one = scanner.scan(clip)
    assert all(r.p_fake == pytest.approx(one.p_fake, abs=1e-6) for r in (many[0], many[2], many[3]))
    # stopping after the first result leaves no ffmpeg decoding the next input
    started = scanner.scan_many([clip, clip, clip])
    next(started)
    started.close()
    children = subprocess.run(["pgrep", "-P", str(os.getpid()), "ffmpeg"],
                              capture_output=True, text=True).stdout.split()
    assert children == []


def test_encoded_clip_with_a_face_entering_mid_clip_gives_the_thorough_scan_tracks(media, detector):
    from conftest import astronaut_png, ffmpeg

    still = astronaut_png(media)
    clip = media / "enters.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=640x360:d=3:r=15", "-loop", "1", "-i", str(still),
           "-filter_complex", "[1:v]scale=150:150,split[a][b];[b]hflip[c];"
           "[0:v][a]overlay=x='40+20*t':y=100[s];[s][c]overlay=x=440:y=120:enable='gte(t,1.5)',format=yuv420p",
           "-t", "3", "-c:v", "libx264", "-preset", "veryfast", str(clip))
    fast = extract_faces(clip, detector, 24, 64, detect_every=8)
    thorough = extract_faces(clip, detector, 24, 64)

    def first_frames(found) -> list[int]:
        return sorted(min(c.face.frame for c, t in zip(found.crops, found.tracks) if t == track)
                      for track in set(found.tracks))

    assert len(set(fast.tracks)) == len(set(thorough.tracks)) == 2
    (_, enters_fast), (_, enters_thorough) = first_frames(fast), first_frames(thorough)
    assert enters_thorough <= enters_fast <= 16  # found at the latest by the full pass at frame 16
    assert len(fast.crops) >= len(thorough.crops) - (enters_fast - enters_thorough)
