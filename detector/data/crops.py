"""Build a cached face-crop dataset from labelled videos and photos, with the scanner's own stages.

    deepfake-detector crops --data ../shared/data --photos ../shared/data/faces/lfw --out work/crops

Crops come from `detector.scan.scanner.extract_faces`, the function the scanner uses, so a model
trained on them sees exactly what it will be asked to judge. Only each clip's main face track is
kept: in a face-swap video other people in the frame are real, and labelling them fake would
teach the model noise. Resumable: a clip already in the index is not processed again.

Stills cropped tightly round a face (the FaceForensics++ crop pool) would come out of the scanner's
wider crop with black margins no video frame has; they are first extended by mirroring their
edges (`--photo-margin`), so the margin holds picture, as it does in a frame.

Each real crop also keeps its source region: the frame (or photo) round the face at its own
resolution, REGION_SCALE times the crop's side, and the face's 468-point mesh
(`detector.data.landmarks`), found once here. Self-blends are made on the region and then cut
the scanner's way, which gives back the crop itself, pixel for pixel (checked before a region is
kept). A face whose mesh is not found keeps its region but no mesh: it is never a self-blend
source; the summary counts them.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.data.datasets import REAL, LabelledVideo, read_dataset, read_face_photos
from detector.data.landmarks import FaceMesh
from detector.scan.crop import CROP_MARGIN, Crop, crop_face
from detector.scan.faces import Face, FaceDetector
from detector.scan.scanner import extract_faces, open_input
from detector.scan.status import Status
from detector.files import append_csv, atomic_write, csv_text, read_csv_log
from detector.scan.video import IMAGE_EXTENSIONS, VideoError

INDEX_COLUMNS = ["crop", "video", "label", "dataset", "method", "identities", "frame", "time", "track", "landmarks",
                 "region", "region_box", "mesh"]
REGION_SCALE = 1.25  # a source region's side, in crop sides: room for the self-blend's shift and scale


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
    region: Path | None = None  # real crops: the face's source region (None: built before regions, or fake)
    region_box: tuple[float, float, float, float] | None = None  # the MTCNN box in region pixels
    mesh: Path | None = None  # the face mesh (468×2 .npy, region pixels); None where it was not found

    def image(self) -> np.ndarray:
        """The crop as RGB uint8."""
        return _read_rgb(self.crop)

    def region_image(self) -> np.ndarray:
        """The source region as RGB uint8."""
        return _read_rgb(self.region)


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_index(folder: Path) -> list[CropRecord]:
    path = Path(folder) / "index.csv"
    if not path.exists():
        raise FileNotFoundError(f"no crop index at {path}: build it with deepfake-detector crops")

    def file(name: str | None) -> Path | None:
        return Path(folder) / name if name else None

    with path.open(newline="", encoding="utf-8") as handle:
        return [
            CropRecord(Path(folder) / row["crop"], row["video"], int(row["label"]), row["dataset"], row["method"],
                       tuple(row["identities"].split(";")), int(row["frame"]), float(row["time"] or "nan"),
                       int(row["track"]), np.array(row["landmarks"].split(), np.float32).reshape(5, 2),
                       file(row.get("region")),
                       tuple(float(v) for v in row["region_box"].split()) if row.get("region_box") else None,
                       file(row.get("mesh")))
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
    """Append the crops of every item not yet in out/index.csv (real ones with their source region
    and face mesh); returns how many items were added. Photos are mirror-extended by photo_margin
    first (0: as they are)."""
    out.mkdir(parents=True, exist_ok=True)
    index_path, done_path = out / "index.csv", out / "videos.csv"
    if index_path.exists() and (header := index_path.read_text(encoding="utf-8").partition("\n")[0]) \
            and header.split(",") != INDEX_COLUMNS:
        raise ValueError(f"{index_path} was built by an older version (no source regions): build into a new --out")
    seen = {record[0] for record in _open_log(done_path, DONE_COLUMNS, lambda record: True)}
    _open_log(index_path, INDEX_COLUMNS, lambda record: record[1] in seen)
    todo = [item for item in items if str(item.path) not in seen]
    detector = FaceDetector()
    mesh: FaceMesh | None = None  # loaded at the first real face
    added = 0
    for item in tqdm(todo, unit="clip", disable=not progress, desc="crops"):
        key = hashlib.sha1(str(item.path).encode()).hexdigest()[:12]
        kept, regions = [], {}
        try:
            with _readable(item.path, photo_margin) as path:
                found = extract_faces(path, detector, frames, crop_size)
                status = Status.OK if found.crops else Status.NO_FACE
                if found.crops:
                    track = main_track(found.tracks)
                    kept = [crop for crop, crop_track in zip(found.crops, found.tracks) if crop_track == track]
                    if item.label == REAL:
                        regions = _regions(path, frames, kept, crop_size)
        except VideoError as exc:
            status = f"unreadable: {exc}"
        rows = []
        if kept:
            (out / key).mkdir(exist_ok=True)
        for crop in kept:
            stem = f"{key}/{crop.face.frame:04d}"
            cv2.imwrite(str(out / f"{stem}.png"), cv2.cvtColor(crop.image, cv2.COLOR_RGB2BGR))
            source = ("", "", "")
            if crop.face.frame in regions:
                region, face = regions[crop.face.frame]
                cv2.imwrite(str(out / f"{stem}.region.png"), cv2.cvtColor(region, cv2.COLOR_RGB2BGR))
                mesh = mesh or FaceMesh()
                points = mesh(region, face.box, face.landmarks)
                if points is not None:
                    np.save(out / f"{stem}.mesh.npy", points)
                source = (f"{stem}.region.png", " ".join(repr(float(v)) for v in face.box),  # exact: the crop is cut again from it
                          f"{stem}.mesh.npy" if points is not None else "")
            time = found.times[crop.face.frame]
            rows.append((f"{stem}.png", str(item.path), item.label, item.dataset, item.method,
                         ";".join(item.identities), crop.face.frame, f"{time:.4f}", track,
                         " ".join(f"{v:.2f}" for v in crop.landmarks.ravel()), *source))
        # Index rows first, then the done-list row, each one appended write: a crash in between
        # only redoes this clip (its index rows are dropped on the next build, as not done).
        append_csv(index_path, rows)
        append_csv(done_path, [(str(item.path), status, len(rows))])
        added += 1
    return added


def source_region(image: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """The image round a face at its own resolution, REGION_SCALE times the scanner's crop square
    and centred as it is (black past the image's edges, as the crop is), and the face in its pixels."""
    margin = (1.0 + CROP_MARGIN) * REGION_SCALE - 1.0
    x1, y1, x2, y2 = face.box
    side = face.side * (1.0 + margin)  # crop_face's own geometry, so the region is its square
    left, top = int(round((x1 + x2) / 2 - side / 2)), int(round((y1 + y2) / 2 - side / 2))
    region = crop_face(image, face, max(1, int(round(side))), margin).image  # cut at its own size: not resampled
    moved = Face(face.frame, (x1 - left, y1 - top, x2 - left, y2 - top), face.prob,
                 face.landmarks - np.array([left, top], np.float32))
    return region, moved


def _regions(path: Path, frames: int, crops: list[Crop], crop_size: int) -> dict[int, tuple[np.ndarray, Face]]:
    """Source regions of these crops of one input, by sampled frame, decoding its frames again
    (only real inputs need them: self-blends are made from real faces). A region is kept only where
    cutting it the scanner's way gives back the crop, pixel for pixel."""
    wanted = {crop.face.frame: crop for crop in crops}
    regions = {}
    try:
        with open_input(path, frames) as decoding:
            for frame in decoding:
                if (crop := wanted.get(frame.index)) is not None:
                    region, face = source_region(frame.image, crop.face)
                    if np.array_equal(crop_face(region, face, crop_size).image, crop.image):
                        regions[frame.index] = region, face
    except VideoError:
        return {}
    return regions


@contextlib.contextmanager
def _readable(path: Path, photo_margin: float):
    """The file to read the input from: a photo mirror-extended by photo_margin into a temporary
    file, anything else as it is."""
    if photo_margin <= 0 or path.suffix.lower() not in IMAGE_EXTENSIONS:
        yield path
        return
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"cannot read the image {path.name}")
    with tempfile.TemporaryDirectory() as tmp:
        extended = Path(tmp) / "photo.png"
        cv2.imwrite(str(extended), mirror_extend(image, photo_margin))
        yield extended


def mesh_counts(records: list[CropRecord]) -> dict[str, tuple[int, int, int]]:
    """Per dataset: real crops, those with a source region, and those with a face mesh too."""
    counts: Counter = Counter()
    for record in records:
        if record.label == REAL:
            counts[record.dataset, 0] += 1
            counts[record.dataset, 1] += record.region is not None
            counts[record.dataset, 2] += record.mesh is not None
    return {dataset: (counts[dataset, 0], counts[dataset, 1], counts[dataset, 2])
            for dataset in sorted({dataset for dataset, _ in counts})}


def _open_log(path: Path, columns: list[str], keep) -> list[list[str]]:
    """The records of an append-only CSV that `keep` accepts; the file is rewritten (atomically,
    once) only when it is new, had a torn last record, or held records not kept."""
    records, torn = read_csv_log(path) if path.exists() else ([], False)
    kept = [record for record in records[1:] if keep(record)]
    if torn or not records or len(kept) < len(records) - 1:
        atomic_write(path, csv_text([columns, *kept]))
    return kept


def without(items: list[LabelledVideo], lists: list[Path], keep_listed: bool = False) -> list[LabelledVideo]:
    """The items whose path no CSV in `lists` names (its `path` column): what stays out of training;
    `keep_listed`: only the items they name (e.g. the validation side, to score it from crops)."""
    listed = set()
    for path in lists:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            listed.update(Path(row["path"]).resolve() for row in csv.DictReader(handle))
    return [item for item in items if (Path(item.path).resolve() in listed) == keep_listed]


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
    parser.add_argument("--exclude", type=Path, action="append", default=[], metavar="CSV",
                        help="leave out the clips and photos a CSV with a path column lists, e.g. a validation "
                             "pool from deepfake-detector pool (repeatable)")
    parser.add_argument("--only", type=Path, action="append", default=[], metavar="CSV",
                        help="keep only the clips and photos a CSV with a path column lists (repeatable)")
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
    if args.exclude:
        before = len(items)
        items = without(items, args.exclude)
        print(f"{before - len(items)} of {before} left out: listed in {', '.join(map(str, args.exclude))}",
              file=sys.stderr)
    if args.only:
        before = len(items)
        items = without(items, args.only, keep_listed=True)
        print(f"{len(items)} of {before} kept: listed in {', '.join(map(str, args.only))}", file=sys.stderr)
    if not items:
        parser.error("nothing to do: give --data and/or --photos")
    try:
        added = build(items, args.out, args.frames, args.size, photo_margin=args.photo_margin)
    except ValueError as exc:  # an index from an older version
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = read_index(args.out)
    print(f"{added} new item(s); {len(records)} crops from "
          f"{len({r.video for r in records})} clips/photos in {args.out / 'index.csv'}", file=sys.stderr)
    for dataset, (reals, regions, meshes) in mesh_counts(records).items():
        print(f"{dataset}: {reals} real crops, {regions} with a source region, {meshes} with a face mesh "
              f"(self-blend sources; no mesh found for {regions - meshes})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
