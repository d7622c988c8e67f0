"""Faces followed through a clip: where to search each sampled frame, and which faces are one person.

Between scheduled full-frame passes each face is searched for only near where it was (cheaper
than a full MTCNN pass, with a full pass's boxes: bench/fast_vs_thorough.py), and detections in
neighbouring samples that overlap enough are linked into one track, so each person is scored on
their own.
"""
from __future__ import annotations

import numpy as np

from detector.scan.faces import Face, FaceDetector

LINK_IOU = 0.2  # two detections in neighbouring samples are one person above this overlap
DETECT_EVERY = 8  # --detect-every: a full-frame pass every N-th sampled frame
FOLLOW_FAILURES = 2  # failed near searches after which whole frames are searched until the next full pass


class FaceTracker:
    """Faces in a clip's sampled frames, frame by frame: a full-frame pass every `every`-th frame,
    and whenever there is no face to follow, one is lost or one nears the edge of where it was
    looked for; in between, each face is searched for only near where it was
    (FaceDetector.detect_near), with a full pass's result. New faces are found by the next full
    pass; `every=1` is a full pass on every frame.

    A near search that fails costs a full pass on top. After FOLLOW_FAILURES of them since the last
    scheduled full pass (faces moving farther than the search margin every frame, a crowd), whole
    frames are searched until the next one, which gives the same faces more cheaply."""

    def __init__(self, detector: FaceDetector, every: int = DETECT_EVERY):
        self.detector, self.every = detector, max(1, every)
        self.previous: list[Face] = []
        self.full_passes = 0
        self.failures = 0  # near searches that fell back to a full pass since the last scheduled one

    def __call__(self, image: np.ndarray, index: int) -> list[Face]:
        if index % self.every == 0:
            self.failures = 0
        elif self.previous and self.failures < FOLLOW_FAILURES:
            near = self.detector.detect_near(image, index, [face.box for face in self.previous])
            if near is not None and all(any(_iou(face.box, now.box) >= LINK_IOU for now in near) for face in self.previous):
                self.previous = near
                return near
            self.failures += 1
        self.full_passes += 1
        self.previous = self.detector.detect([image], index)[0]
        return self.previous


def link_tracks(faces: list[Face]) -> list[int]:
    """Track id per face (faces in frame order): each face joins the track whose latest box overlaps
    it most, greedily, else starts a new track, so each person is scored on their own."""
    last_box: dict[int, tuple[float, float, float, float]] = {}
    by_frame: dict[int, list[int]] = {}
    for i, face in enumerate(faces):
        by_frame.setdefault(face.frame, []).append(i)
    track_of: list[int] = [-1] * len(faces)
    for frame in sorted(by_frame):
        members = by_frame[frame]
        pairs = sorted(
            ((_iou(faces[i].box, box), i, track) for i in members for track, box in last_box.items()),
            reverse=True,
        )
        taken: set[int] = set()
        for overlap, i, track in pairs:
            if overlap < LINK_IOU:
                break
            if track_of[i] == -1 and track not in taken:
                track_of[i] = track
                taken.add(track)
        for i in members:
            if track_of[i] == -1:
                track_of[i] = len(last_box)
            last_box[track_of[i]] = faces[i].box
    return track_of


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
