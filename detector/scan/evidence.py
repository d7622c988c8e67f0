"""The pictures behind a verdict, kept while the crops are still in memory: small JPEG thumbnails
of the crops the HTML report shows and, with explain, heat-map overlays of the most suspicious.

Only a few crops per track are kept (the most and the least suspicious), as JPEG bytes, so a
result stays small however long the batch (detector.output.html_report writes them out).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from detector.scan.explain import Explainer

THUMBNAIL_SIDE = 96
JPEG_QUALITY = 80
SHOWN_PER_TRACK = 12  # the strip of one track: its 6 most and 6 least suspicious crops
EXPLAINED = 3  # heat-maps for this many of the most suspicious crops per input
HEATMAP_SIDE = 160


@dataclass(frozen=True)
class Evidence:
    """JPEG bytes keyed by crop number (the order of the faces in ScanResult.frames)."""
    thumbnails: Mapping[int, bytes] = field(default_factory=dict)
    heatmaps: Mapping[int, bytes] = field(default_factory=dict)
    method: str = ""  # how the heat-maps were made: "grad-cam" or "occlusion"


def shown_crops(scores: Sequence[float], tracks: Sequence[int], per_track: int = SHOWN_PER_TRACK) -> list[int]:
    """Crop numbers worth a thumbnail: per track, most suspicious first, the top and bottom
    `per_track / 2` when the track has more crops than `per_track`."""
    shown = []
    for track in sorted(set(tracks)):
        ranked = sorted((i for i, t in enumerate(tracks) if t == track), key=lambda i: -scores[i])
        if len(ranked) > per_track:
            ranked = ranked[:per_track // 2] + ranked[-(per_track - per_track // 2):]
        shown.extend(ranked)
    return shown


def jpeg(image: np.ndarray, side: int) -> bytes:
    """An RGB image as a `side`-pixel JPEG."""
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    _, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return data.tobytes()


def collect(crops: Sequence[np.ndarray], scores: np.ndarray, tracks: Sequence[int],
            explainer: Explainer | None = None) -> Evidence:
    """Thumbnails of the shown crops, and heat-maps of the most suspicious when an explainer is given."""
    thumbnails = {i: jpeg(crops[i], THUMBNAIL_SIDE) for i in shown_crops(list(map(float, scores)), tracks)}
    if explainer is None or not len(crops):
        return Evidence(thumbnails)
    from detector.scan.explain import overlay

    top = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:EXPLAINED]]
    maps = explainer(np.stack([crops[i] for i in top]))
    heatmaps = {i: jpeg(overlay(crops[i], heat), HEATMAP_SIDE) for i, heat in zip(top, maps)}
    return Evidence(thumbnails, heatmaps, explainer.method)
