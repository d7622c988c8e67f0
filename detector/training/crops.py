"""Build a cached face-crop dataset from labelled videos and photos, with the scanner's own stages.

    deepfake-detector crops --data ../shared/data --photos ../shared/data/faces/lfw --out work/crops

Crops come from `detector.scan.scanner.extract_faces`, the function the scanner uses, so a model
trained on them sees exactly what it will be asked to judge. Only each clip's main face track is
kept: in a face-swap video other people in the frame are real, and labelling them fake would
teach the model noise. Resumable: a clip already in the index is not processed again.

Stills cropped tightly round a face (the FaceForensics++ crop pool) would come out of the scanner's
wider crop with black margins no video frame has; they are first extended by mirroring their
edges (`--photo-margin`), so the margin holds picture, as it does in a frame.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.data.datasets import LabelledVideo, read_dataset, read_face_photos
from detector.scan.faces import FaceDetector
from detector.scan.scanner import extract_faces
from detector.scan.status import Status
from detector.files import append_csv, atomic_write, csv_text, read_csv_log
from detector.scan.video import IMAGE_EXTENSIONS, VideoError

INDEX_COLUMNS = ["crop", "video", "label", "dataset", "method", "identities", "frame", "time", "track", "landmarks"]


@dataclass(frozen=True)
class CropRecord:
    """One row of index.csv: a crop file and everything known about where it came from."""
    crop: Path
    video: str
    label: int
    dataset: str
    method: str
    identities: tuple[str, ...]
    frame: int
    time: float
    track: int
    landmarks: np.ndarray  # 5×2 in crop pixels

    def image(self) -> np.ndarray:
        """The crop as RGB uint8."""
        return cv2.cvtColor(cv2.imread(str(self.crop), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_index(folder: Path) -> list[CropRecord]:
    path = Path(folder) / "index.csv"
    if not path.exists():
        raise FileNotFoundError(f"no crop index at {path}: build it with deepfake-detector crops")
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            CropRecord(Path(folder) / row["crop"], row["video"], int(row["label"]), row["dataset"], row["method"],
                       tuple(row["identities"].split(";")), int(row["frame"]), float(row["time"] or "nan"),
                       int(row["track"]), np.array(row["landmarks"].split(), np.float32).reshape(5, 2))
            for row in csv.DictReader(handle)
        ]


def main_track(tracks: list[int]) -> int:
    """The track with the most crops (ties: the first, which holds the larger face)."""
    return max(dict.fromkeys(tracks), key=tracks.count)


DONE_COLUMNS = ["video", "status", "crops"]


PHOTO_MARGIN = 0.25  # of the still's size, each side: a still cut at the face box then crops without black


def mirror_extend(image: np.ndarray, fraction: float) -> np.ndarray:
    """The image extended on every side by fraction of its size, mirroring its edges."""
    dy, dx = round(image.shape[0] * fraction), round(image.shape[1] * fraction)
    return cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_REFLECT_101)


def build(items: list[LabelledVideo], out: Path, frames: int, crop_size: int, progress: bool = True,
          photo_margin: float = PHOTO_MARGIN) -> int:
    """Append the crops of every item not yet in out/index.csv; returns how many items were added.
    Photos are mirror-extended by photo_margin first (0: as they are)."""
    out.mkdir(parents=True, exist_ok=True)
    index_path, done_path = out / "index.csv", out / "videos.csv"
    seen = {record[0] for record in _open_log(done_path, DONE_COLUMNS, lambda record: True)}
    _open_log(index_path, INDEX_COLUMNS, lambda record: record[1] in seen)
    todo = [item for item in items if str(item.path) not in seen]
    detector = FaceDetector()
    added = 0
    for item in tqdm(todo, unit="clip", disable=not progress, desc="crops"):
        key = hashlib.sha1(str(item.path).encode()).hexdigest()[:12]
        try:
            found = _extract(item.path, detector, frames, crop_size, photo_margin)
            status = Status.OK if found.crops else Status.NO_FACE
        except VideoError as exc:
            found, status = None, f"unreadable: {exc}"
        rows = []
        if found and found.crops:
            track = main_track(found.tracks)
            (out / key).mkdir(exist_ok=True)
            for crop, crop_track in zip(found.crops, found.tracks):
                if crop_track != track:
                    continue
                name = f"{key}/{crop.face.frame:04d}.png"
                cv2.imwrite(str(out / name), cv2.cvtColor(crop.image, cv2.COLOR_RGB2BGR))
                time = found.times[crop.face.frame]
                rows.append((name, str(item.path), item.label, item.dataset, item.method,
                             ";".join(item.identities), crop.face.frame, f"{time:.4f}", crop_track,
                             " ".join(f"{v:.2f}" for v in crop.landmarks.ravel())))
        # Index rows first, then the done-list row, each one appended write: a crash in between
        # only redoes this clip (its index rows are dropped on the next build, as not done).
        append_csv(index_path, rows)
        append_csv(done_path, [(str(item.path), status, len(rows))])
        added += 1
    return added


def _extract(path: Path, detector: FaceDetector, frames: int, crop_size: int, photo_margin: float):
    if photo_margin <= 0 or path.suffix.lower() not in IMAGE_EXTENSIONS:
        return extract_faces(path, detector, frames, crop_size)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"cannot read the image {path.name}")
    with tempfile.TemporaryDirectory() as tmp:
        extended = Path(tmp) / "photo.png"
        cv2.imwrite(str(extended), mirror_extend(image, photo_margin))
        return extract_faces(extended, detector, frames, crop_size)


def _open_log(path: Path, columns: list[str], keep) -> list[list[str]]:
    """The records of an append-only CSV that `keep` accepts; the file is rewritten (atomically,
    once) only when it is new, had a torn last record, or held records not kept."""
    records, torn = read_csv_log(path) if path.exists() else ([], False)
    kept = [record for record in records[1:] if keep(record)]
    if torn or not records or len(kept) < len(records) - 1:
        atomic_write(path, csv_text([columns, *kept]))
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector crops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="labelled videos: a folder in a supported layout or a CSV manifest (repeatable)")
    parser.add_argument("--photos", type=Path, action="append", default=[],
                        help="a folder of real face photos, e.g. LFW (repeatable); index.csv names identities")
    parser.add_argument("--out", type=Path, required=True, help="crop dataset folder (resumes if it exists)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (default 32, as the scanner)")
    parser.add_argument("--size", type=int, default=224, help="crop size in pixels (default 224, the model's input)")
    parser.add_argument("--photo-margin", type=float, default=PHOTO_MARGIN,
                        help="extend photos by mirroring their edges by this fraction of their size before "
                             f"detection, so tight stills crop without black margins (default {PHOTO_MARGIN}; 0: off)")
    parser.add_argument("--limit-photos", type=int, default=None, help="use at most this many photos (seeded pick)")
    args = parser.parse_args(argv)
    items: list[LabelledVideo] = []
    for data in args.data:
        items += read_dataset(data)
    for photos in args.photos:
        found = read_face_photos(photos)
        if args.limit_photos is not None and len(found) > args.limit_photos:
            pick = np.random.default_rng(0).choice(len(found), args.limit_photos, replace=False)
            found = [found[i] for i in sorted(pick)]
        items += found
    if not items:
        parser.error("nothing to do: give --data and/or --photos")
    added = build(items, args.out, args.frames, args.size, photo_margin=args.photo_margin)
    records = read_index(args.out)
    print(f"{added} new item(s); {len(records)} crops from "
          f"{len({r.video for r in records})} clips/photos in {args.out / 'index.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
