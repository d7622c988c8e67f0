"""Readers for labelled deepfake video collections, and a train/validation split by identity.

Every reader returns a flat, path-sorted list of `LabelledVideo`, so training and evaluation
code never needs to know which dataset layout the videos came from.

Each video also carries the source identities it shows. Deepfake datasets reuse the same
people across many clips (FaceForensics++ `183_253` is target 183 wearing source 253's face,
and `183` is its original), so a split by file leaks faces from training into validation and
inflates the validation score. `split_by_identity` keeps every identity on one side.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.files import atomic_write
from detector.scan.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


REAL, FAKE = 0, 1


@dataclass(frozen=True)
class LabelledVideo:
    """One labelled clip, with the identities the split must keep together."""

    path: Path  # absolute path of the video (or image) file
    label: int  # 1 = fake, 0 = real
    dataset: str  # "FF++", "Celeb-DF", "DFDC", "folder", or the manifest's dataset column
    method: str  # manipulation method ("Deepfakes", "Face2Face", ...); "real" for reals
    identities: tuple[str, ...]  # source identities this clip shows


# --- identities from file names --------------------------------------------------------------

_FF_NAME = re.compile(r"(\d+)(?:_(\d+))?")  # 183 (original) or 183_253 (target_source)
_DFD_FAKE = re.compile(r"(\d{2})_(\d{2})__[a-z][a-z0-9_]*__[A-Z0-9]+")  # 01_11__scene__CODE
_DFD_REAL = re.compile(r"(\d{2})__[a-z][a-z0-9_]*")  # 01__scene
_CELEB_NAME = re.compile(r"(id\d+)_(?:(id\d+)_)?(\d{4})")  # id0_0000 (real) or id0_id16_0000 (synthesis)


def _name_identities(stem: str) -> tuple[str, ...]:
    """Identities from a FaceForensics++ / DeepFakeDetection file stem, else the stem itself.

    Only the trailing `__`-separated tokens are read, so prefixed names such as
    `FFPP__repo__Deepfakes__183_253` resolve like plain `183_253`.
    """
    tokens = stem.split("__")
    if match := _FF_NAME.fullmatch(tokens[-1]):
        return tuple(f"ff:{number}" for number in match.groups() if number is not None)
    if match := _DFD_FAKE.fullmatch("__".join(tokens[-3:])):
        return tuple(f"dfd:{actor}" for actor in match.groups())
    if match := _DFD_REAL.fullmatch("__".join(tokens[-2:])):
        return (f"dfd:{match.group(1)}",)
    return (stem,)


def source_scene(stem: str, label: int) -> str | None:
    """The original recording a clip is, or was made from, read from its FaceForensics++,
    DeepFakeDetection or Celeb-DF name; None where the name does not say.

    `183` and the fake `183_253` (253's face put into 183's video) are scene ff:183;
    `01__talking_against_wall` and `01_11__talking_against_wall__CODE` are one scene, as are
    `id0_0000` and `id0_id16_0000`. A fake must name its source too: a fake called `000` alone
    does not say which recording it was made from. Evaluation pairs each fake with its own
    original this way (report.paired_ranking).
    """
    tokens = stem.split("__")
    if (match := _FF_NAME.fullmatch(tokens[-1])) and (match.group(2) is not None) == bool(label):
        return f"ff:{match.group(1)}"
    if label and (match := _DFD_FAKE.fullmatch("__".join(tokens[-3:]))):
        return f"dfd:{match.group(1)}__{tokens[-2]}"
    if not label and (match := _DFD_REAL.fullmatch("__".join(tokens[-2:]))):
        return f"dfd:{match.group(1)}__{tokens[-1]}"
    if (match := _CELEB_NAME.fullmatch(tokens[-1])) and (match.group(2) is not None) == bool(label):
        return f"celeb:{match.group(1)}_{match.group(3)}"
    return None


def _celeb_identities(stem: str) -> tuple[str, ...]:
    """`id0_0000` shows celebrity id0; the synthesis `id0_id16_0000` shows id0 and id16."""
    celebrities = [part for part in stem.split("_") if re.fullmatch(r"id\d+", part)]
    return tuple(f"celeb:{c}" for c in celebrities) or (f"celeb:{stem}",)


# --- small helpers ---------------------------------------------------------------------------


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _videos_under(folder: Path) -> list[Path]:
    """Video files anywhere below `folder` (none if it does not exist)."""
    return sorted(p for p in folder.rglob("*") if _is_video(p))


def _parse_label(text: str, where: str) -> int:
    """Accept the spellings datasets use: real/fake in any case, or 0/1 (1 = fake)."""
    labels = {"real": REAL, "0": REAL, "fake": FAKE, "1": FAKE}
    try:
        return labels[str(text).strip().lower()]
    except KeyError:
        raise ValueError(f"{where}: label {text!r} is not one of real/fake/0/1") from None


def _by_path(videos: Iterable[LabelledVideo]) -> list[LabelledVideo]:
    return sorted(videos, key=lambda v: v.path)


# --- readers ---------------------------------------------------------------------------------


def read_faceforensics(root: Path) -> list[LabelledVideo]:
    """FaceForensics++: `original_sequences/<youtube|actors>/<compression>/videos/*` are real,
    `manipulated_sequences/<method>/<compression>/videos/*` are fake.

    Mask videos (`<method>/masks/videos`) are skipped: they are not faces.
    """
    root = Path(root).resolve()
    videos = [
        LabelledVideo(p, REAL, "FF++", "real", _name_identities(p.stem))
        for p in root.glob("original_sequences/*/*/videos/*")
        if _is_video(p)
    ]
    videos += [
        LabelledVideo(p, FAKE, "FF++", p.parts[-4], _name_identities(p.stem))
        for p in root.glob("manipulated_sequences/*/*/videos/*")
        if _is_video(p) and p.parts[-3] != "masks"
    ]
    return _by_path(videos)


def read_celebdf(root: Path) -> list[LabelledVideo]:
    """Celeb-DF (v1/v2): `Celeb-real/` and `YouTube-real/` are real, `Celeb-synthesis/` fake."""
    root = Path(root).resolve()
    videos = [
        LabelledVideo(p, REAL, "Celeb-DF", "real", _celeb_identities(p.stem))
        for p in _videos_under(root / "Celeb-real")
    ]
    videos += [
        LabelledVideo(p, REAL, "Celeb-DF", "real", (f"yt:{p.stem}",))
        for p in _videos_under(root / "YouTube-real")
    ]
    videos += [
        LabelledVideo(p, FAKE, "Celeb-DF", "Celeb-synthesis", _celeb_identities(p.stem))
        for p in _videos_under(root / "Celeb-synthesis")
    ]
    return _by_path(videos)


def official_test_paths(videos: Iterable[LabelledVideo]) -> set[Path]:
    """The official test videos among these: Celeb-DF's `List_of_testing_videos.txt` beside the
    `Celeb-real/`… folders of any Celeb-DF clip here. The split holds them out (`split_sides(held_out=...)`)."""
    roots = {v.path.parent.parent for v in videos if v.dataset == "Celeb-DF"}
    listed = set()
    for root in roots:
        if (root / "List_of_testing_videos.txt").is_file():
            listed |= celebdf_test_list(root)
    return listed


def celebdf_test_list(root: Path) -> set[Path]:
    """Absolute paths of Celeb-DF's official test videos, for `split_sides(held_out=...)`.

    `List_of_testing_videos.txt` lines read `<1|0> <relative path>`; there 1 means REAL, the
    opposite of this module's convention, so the flag is checked but not used as a label.
    """
    root = Path(root).resolve()
    list_path = root / "List_of_testing_videos.txt"
    paths = set()
    for line_no, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        flag, _, relative = line.strip().partition(" ")
        if flag not in {"0", "1"} or not relative.strip():
            raise ValueError(f"{list_path}:{line_no}: expected '<1|0> <path>', got {line!r}")
        paths.add(root / relative.strip())
    return paths


def read_dfdc(root: Path) -> list[LabelledVideo]:
    """DFDC: every folder below `root` with a `metadata.json` (one per downloaded part).

    A fake shows the person of the real video it was made from (`original`), so it takes
    that video's name as identity. Entries whose file is not on disk are skipped, so partly
    downloaded parts still work.
    """
    root = Path(root).resolve()
    videos = []
    for metadata_path in sorted(root.rglob("metadata.json")):
        for name, entry in json.loads(metadata_path.read_text()).items():
            path = metadata_path.parent / name
            if not _is_video(path):
                continue
            label = _parse_label(entry.get("label", ""), where=f"{metadata_path} [{name}]")
            source = (entry.get("original") if label == FAKE else None) or name
            method = "DFDC" if label == FAKE else "real"
            identity = f"dfdc:{Path(source).stem}"
            videos.append(LabelledVideo(path, label, "DFDC", method, (identity,)))
    return _by_path(videos)


def _label_folders(root: Path) -> list[tuple[Path, int]]:
    """`real/` and `fake/` children of `root`, matched case-insensitively."""
    names = {"real": REAL, "fake": FAKE}
    return sorted(
        (child, names[child.name.lower()])
        for child in root.iterdir()
        if child.is_dir() and child.name.lower() in names
    )


def read_folders(root: Path) -> list[LabelledVideo]:
    """Plain `real/` and `fake/` folders; `fake/<method>/...` subfolders name the method."""
    root = Path(root).resolve()
    videos = []
    for folder, label in _label_folders(root):
        for path in _videos_under(folder):
            nested = path.relative_to(folder).parts
            method = "real" if label == REAL else (nested[0] if len(nested) > 1 else "unknown")
            videos.append(LabelledVideo(path, label, "folder", method, _name_identities(path.stem)))
    return _by_path(videos)


def read_manifest(csv_path: Path) -> list[LabelledVideo]:
    """A CSV with columns `file,label` and optionally `dataset_of_origin` (or `dataset`),
    `manipulation` (or `method`) and `identity` (`;`-separated).

    Files are relative to the CSV's folder. Without an `identity` value, identities come
    from the file name by the FaceForensics++ / DeepFakeDetection rules, else the file stem.
    """
    csv_path = Path(csv_path).resolve()
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        missing = sorted({"file", "label"} - columns)
        if missing:
            raise ValueError(
                f"{csv_path}: manifest lacks required column(s) {', '.join(missing)}; "
                "it needs 'file' and 'label' (optional: 'dataset_of_origin' or 'dataset', "
                "'manipulation' or 'method', 'identity')"
            )
        dataset_column = next((c for c in ("dataset_of_origin", "dataset") if c in columns), None)
        method_column = next((c for c in ("manipulation", "method") if c in columns), None)

        def cell(row: dict[str, str | None], column: str | None) -> str:
            return (row.get(column) or "").strip() if column else ""

        videos = []
        for line_no, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line_no}"
            file = cell(row, "file")
            if not file:
                raise ValueError(f"{where}: empty 'file'")
            path = csv_path.parent / file
            label = _parse_label(cell(row, "label"), where)
            method = "real" if label == REAL else cell(row, method_column) or "unknown"
            given = tuple(i.strip() for i in cell(row, "identity").split(";") if i.strip())
            videos.append(
                LabelledVideo(
                    path=path,
                    label=label,
                    dataset=cell(row, dataset_column) or "manifest",
                    method=method,
                    identities=given or _name_identities(path.stem),
                )
            )
    return _by_path(videos)


def _has_folder(root: Path, *names: str) -> bool:
    return any((root / name).is_dir() for name in names)


# Checked in this order; the first layout whose marker is present reads the folder.
_LAYOUTS: tuple[tuple[str, Callable[[Path], bool], Callable[[Path], list[LabelledVideo]]], ...] = (
    (
        "CSV manifest (manifest.csv, or pass the .csv file itself)",
        lambda root: (root / "manifest.csv").is_file(),
        lambda root: read_manifest(root / "manifest.csv"),
    ),
    (
        "FaceForensics++ (original_sequences/, manipulated_sequences/)",
        lambda root: _has_folder(root, "original_sequences", "manipulated_sequences"),
        read_faceforensics,
    ),
    (
        "Celeb-DF (Celeb-real/, YouTube-real/, Celeb-synthesis/)",
        lambda root: _has_folder(root, "Celeb-real", "YouTube-real", "Celeb-synthesis"),
        read_celebdf,
    ),
    (
        "plain folders (real/, fake/)",
        lambda root: bool(_label_folders(root)),
        read_folders,
    ),
    (
        "DFDC (folders with metadata.json)",
        lambda root: next(root.rglob("metadata.json"), None) is not None,
        read_dfdc,
    ),
)


def read_dataset(root: Path) -> list[LabelledVideo]:
    """Read a CSV manifest, or a folder in whichever known layout it has."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise ValueError(f"{root} is a file but not a .csv manifest")
        return read_manifest(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such dataset folder or manifest: {root}")
    for name, matches, read in _LAYOUTS:
        if matches(root):
            videos = read(root)
            if not videos:
                raise ValueError(f"{root} looks like {name} but holds no videos")
            return videos
    known = "; ".join(name for name, _, _ in _LAYOUTS)
    raise ValueError(f"{root}: dataset layout not recognised. Known layouts: {known}")


def read_face_photos(root: Path) -> list[LabelledVideo]:
    """Face photos or stills for training, dataset = folder name: real unless `index.csv` says.

    `index.csv` (optional) has `file` (relative to the folder, or a bare file name) and any of:
    an identity column (`identity` or `lfw_identity`), so one person's photos stay on one side
    of the split, else the file's folder names the person; `label` (real/fake) and `method`,
    as in a pool of FaceForensics++ crops (`faces/ffpp_crops`).
    """
    root = Path(root).resolve()
    rows: dict[str, dict[str, str]] = {}
    if (root / "index.csv").is_file():
        with (root / "index.csv").open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                if row.get("file"):
                    rows[row["file"]] = row
                    rows.setdefault(Path(row["file"]).name, row)
    photos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise ValueError(f"no face photos ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}")
    items = []
    for path in photos:
        row = rows.get(path.relative_to(root).as_posix()) or rows.get(path.name) or {}
        person = row.get("identity") or row.get("lfw_identity") or path.parent.name
        label = _parse_label(row["label"], f"{root / 'index.csv'}: {path.name}") if row.get("label") else REAL
        method = "real" if label == REAL else (row.get("method") or "unknown")
        items.append(LabelledVideo(path, label, root.name, method, (f"{root.name}:{person}",)))
    return items


# --- split -----------------------------------------------------------------------------------


def identity_groups(videos: list[LabelledVideo]) -> list[list[LabelledVideo]]:
    """Connected components of videos that share any identity (union-find)."""
    parent = list(range(len(videos)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for i, video in enumerate(videos):
        for identity in video.identities:
            parent[find(i)] = find(first_seen.setdefault(identity, i))
    groups: dict[int, list[LabelledVideo]] = {}
    for i, video in enumerate(videos):
        groups.setdefault(find(i), []).append(video)
    return list(groups.values())


def _count(groups: list[list[LabelledVideo]], label: int) -> int:
    return sum(v.label == label for group in groups for v in group)


SIDES = ("train", "val", "test")


def split_sides(
    videos: Iterable[LabelledVideo],
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    held_out: set[Path] | None = None,
) -> dict[str, list[LabelledVideo]]:
    """Split into train, val and test so that no identity appears on two sides.

    Videos sharing an identity form one group. Groups holding any of `held_out` (e.g. an
    official test list) go to test, or to val when there is no test fraction. The other groups,
    in seeded-random order, each go to the side furthest below its share of every
    (dataset, label) cell the group touches: stratified, so each side gets its share of every
    source's reals and fakes, not just of the whole. If val or test then lacks a label, the
    smallest train group with that label moves over, provided train keeps some of it. Same
    input and seed, same split, whatever the input order.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction > 1.0:
        raise ValueError(f"val_fraction + test_fraction must be at most 1, got {val_fraction + test_fraction}")
    videos = _by_path(videos)
    share = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    forced_side = "test" if test_fraction > 0 else "val"
    forced = held_out or set()
    groups = identity_groups(videos)
    sides: dict[str, list[list[LabelledVideo]]] = {side: [] for side in SIDES}
    totals: dict[tuple[str, int], int] = {}
    for video in videos:
        totals[video.dataset, video.label] = totals.get((video.dataset, video.label), 0) + 1
    counts = {side: dict.fromkeys(totals, 0) for side in SIDES}

    def place(group: list[LabelledVideo], side: str) -> None:
        sides[side].append(group)
        for video in group:
            counts[side][video.dataset, video.label] += 1

    rest = []
    for group in groups:
        if any(v.path in forced for v in group):
            place(group, forced_side)
        else:
            rest.append(group)
    for index in np.random.default_rng(seed).permutation(len(rest)):
        group = rest[index]
        deficit = {side: sum(share[side] * totals[v.dataset, v.label] - counts[side][v.dataset, v.label]
                             for v in group) for side in SIDES if share[side] > 0}
        place(group, max(deficit, key=lambda side: (deficit[side], -SIDES.index(side))))

    for side in ("val", "test"):
        if share[side] == 0:
            continue
        for label in (REAL, FAKE):
            if _count(sides[side], label):
                continue
            in_train = _count(sides["train"], label)
            movable = [g for g in sides["train"] if 0 < _count([g], label) < in_train]
            if movable:
                group = min(movable, key=len)
                sides["train"].remove(group)
                sides[side].append(group)
    return {side: _by_path(v for g in sides[side] for v in g) for side in SIDES}


def split_by_identity(
    videos: Iterable[LabelledVideo],
    val_fraction: float = 0.2,
    seed: int = 0,
    val_paths: set[Path] | None = None,
) -> tuple[list[LabelledVideo], list[LabelledVideo]]:
    """(train, val) with no identity on both sides; `val_paths` are forced into val (`split_sides`)."""
    sides = split_sides(videos, val_fraction, 0.0, seed, val_paths)
    return sides["train"], sides["val"]


# --- split files -----------------------------------------------------------------------------

_SPLIT_COLUMNS = ("path", "label", "dataset", "method", "identities", "split")


def write_split(path: Path, train: Iterable[LabelledVideo], val: Iterable[LabelledVideo],
                test: Iterable[LabelledVideo] = ()) -> None:
    """Save a split as CSV so training and evaluation runs use exactly the same videos."""
    rows = [_SPLIT_COLUMNS]
    for split, videos in (("train", train), ("val", val), ("test", test)):
        rows += [(v.path, v.label, v.dataset, v.method, ";".join(v.identities), split) for v in videos]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    atomic_write(path, buffer.getvalue())


def read_split_sides(path: Path) -> dict[str, list[LabelledVideo]]:
    """Load a split written by `write_split`: {"train": [...], "val": [...], "test": [...]}."""
    path = Path(path)
    sides: dict[str, list[LabelledVideo]] = {side: [] for side in SIDES}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = sorted(set(_SPLIT_COLUMNS) - set(reader.fieldnames or ()))
        if missing:
            raise ValueError(f"{path}: split file lacks column(s) {', '.join(missing)}")
        for line_no, row in enumerate(reader, start=2):
            if row["split"] not in sides:
                raise ValueError(f"{path}:{line_no}: split {row['split']!r} is not train, val or test")
            sides[row["split"]].append(
                LabelledVideo(
                    path=Path(row["path"]),
                    label=_parse_label(row["label"], f"{path}:{line_no}"),
                    dataset=row["dataset"],
                    method=row["method"],
                    identities=tuple(i for i in row["identities"].split(";") if i),
                )
            )
    return sides


def read_split(path: Path) -> tuple[list[LabelledVideo], list[LabelledVideo]]:
    """Load a split written by `write_split`, as (train, val)."""
    sides = read_split_sides(path)
    return sides["train"], sides["val"]
