"""Tests for detector.data.datasets: every layout is built from empty files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.data.datasets import (
    LabelledVideo,
    celebdf_test_list,
    read_celebdf,
    read_dataset,
    read_dfdc,
    read_faceforensics,
    read_folders,
    read_manifest,
    read_split,
    source_scene,
    split_by_identity,
    write_split,
)

SHARED_MANIFEST = Path("/work/shared/data/manifest.csv")
DFD_FAKE = "01_11__talking_against_wall__9229VVZ3.mp4"  # actors 01 and 11, scene, clip code


def touch(root: Path, *relative: str) -> None:
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def by_name(videos: list[LabelledVideo]) -> dict[str, LabelledVideo]:
    return {v.path.name: v for v in videos}


def assert_disjoint(train: list[LabelledVideo], val: list[LabelledVideo]) -> None:
    train_ids = {i for v in train for i in v.identities}
    val_ids = {i for v in val for i in v.identities}
    assert not train_ids & val_ids


@pytest.fixture
def ffpp(tmp_path: Path) -> Path:
    root = tmp_path / "ffpp"
    touch(
        root,
        "original_sequences/youtube/c23/videos/183.mp4",
        "original_sequences/youtube/c23/videos/253.mp4",
        "original_sequences/youtube/c40/videos/183.mp4",
        "original_sequences/actors/c23/videos/01__talking_against_wall.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/183_253.mp4",
        "manipulated_sequences/Face2Face/c40/videos/253_183.MP4",
        "manipulated_sequences/Deepfakes/masks/videos/183_253.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/" + DFD_FAKE,
        "manipulated_sequences/Deepfakes/c23/videos/notes.txt",
    )
    return root


def test_faceforensics_labels_methods_identities(ffpp: Path) -> None:
    videos = read_faceforensics(ffpp)
    assert len(videos) == 7  # masks and non-videos skipped
    assert [v.path for v in videos] == sorted(v.path for v in videos)
    assert all(v.path.is_absolute() and v.dataset == "FF++" for v in videos)
    assert not any("masks" in v.path.parts for v in videos)

    names = by_name(videos)
    assert names["183_253.mp4"] == LabelledVideo(
        ffpp.resolve() / "manipulated_sequences/Deepfakes/c23/videos/183_253.mp4",
        1,
        "FF++",
        "Deepfakes",
        ("ff:183", "ff:253"),
    )
    assert names["253_183.MP4"].method == "Face2Face"
    assert names[DFD_FAKE].identities == ("dfd:01", "dfd:11")
    assert names[DFD_FAKE].method == "DeepFakeDetection"
    assert names["01__talking_against_wall.mp4"].identities == ("dfd:01",)
    reals = [v for v in videos if v.label == 0]
    assert len(reals) == 4 and all(v.method == "real" for v in reals)
    assert {v.identities for v in reals if v.path.name == "183.mp4"} == {("ff:183",)}


@pytest.mark.parametrize(("stem", "label", "scene"), [
    ("183", 0, "ff:183"),
    ("FFPP__repo__Deepfakes__183_253", 1, "ff:183"),  # 253's face in 183's video
    ("183_253", 0, None),  # a real clip is not named like a fake
    ("FFPP__repo__fake__000", 1, None),  # a fake that does not name its source
    ("FaceForensics__actors__01__talking_against_wall", 0, "dfd:01__talking_against_wall"),
    ("DeepFakeDetection__" + DFD_FAKE[:-4], 1, "dfd:01__talking_against_wall"),
    ("01_11__kitchen_pan__ABCD1234", 1, "dfd:01__kitchen_pan"),  # another scene of the same actor
    ("id0_0000", 0, "celeb:id0_0000"),
    ("id0_id16_0000", 1, "celeb:id0_0000"),
    ("OTHER__repo__driving__d9", 0, None),
])
def test_source_scene_pairs_a_fake_with_its_own_original(stem: str, label: int, scene: str | None) -> None:
    assert source_scene(stem, label) == scene


def test_celebdf_and_official_test_list(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id16_0003.mp4",
        "Celeb-real/id5_0001.mp4",
        "YouTube-real/00000.mp4",
        "Celeb-synthesis/id0_id16_0000.mp4",
        "Celeb-synthesis/id5_id7_0001.mp4",
    )
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id5_0001.mp4\n0 Celeb-synthesis/id5_id7_0001.mp4\n\n"
    )
    videos = read_celebdf(tmp_path)
    names = by_name(videos)
    assert names["id0_0000.mp4"].label == 0 and names["id0_0000.mp4"].identities == ("celeb:id0",)
    assert names["00000.mp4"].identities == ("yt:00000",) and names["00000.mp4"].label == 0
    fake = names["id0_id16_0000.mp4"]
    assert (fake.label, fake.method, fake.dataset) == (1, "Celeb-synthesis", "Celeb-DF")
    assert fake.identities == ("celeb:id0", "celeb:id16")

    test_paths = celebdf_test_list(tmp_path)
    assert test_paths == {
        tmp_path.resolve() / "Celeb-real/id5_0001.mp4",
        tmp_path.resolve() / "Celeb-synthesis/id5_id7_0001.mp4",
    }
    for seed in range(5):
        train, val = split_by_identity(videos, val_fraction=0.0, seed=seed, val_paths=test_paths)
        assert {v.path for v in val} == test_paths
        assert_disjoint(train, val)
        # forced videos bring their identities along: id5's real clip is forced, id7 follows
        train, val = split_by_identity(videos, val_fraction=0.5, seed=seed, val_paths=test_paths)
        assert test_paths <= {v.path for v in val}
        assert_disjoint(train, val)


def test_official_test_list_is_found_beside_celebdf_clips(tmp_path: Path) -> None:
    """The trainer's split holds out Celeb-DF's official test videos, found from the clips alone."""
    from detector.data.datasets import official_test_paths, split_sides

    touch(tmp_path, "Celeb-real/id0_0000.mp4", "Celeb-real/id5_0001.mp4", "Celeb-synthesis/id0_id5_0002.mp4",
          "Celeb-synthesis/id8_id9_0001.mp4", "Celeb-real/id8_0004.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text("0 Celeb-synthesis/id8_id9_0001.mp4\n")
    videos = read_celebdf(tmp_path)
    listed = official_test_paths(videos)
    assert listed == {tmp_path.resolve() / "Celeb-synthesis/id8_id9_0001.mp4"}
    sides = split_sides(videos, val_fraction=0.2, test_fraction=0.2, seed=0, held_out=listed)
    assert {v.path.name for v in sides["test"]} >= {"id8_id9_0001.mp4", "id8_0004.mp4"}  # id8 follows
    assert official_test_paths(make_videos(3)) == set()  # other datasets: nothing forced


def test_celebdf_test_list_rejects_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "List_of_testing_videos.txt").write_text("real Celeb-real/id0_0000.mp4\n")
    with pytest.raises(ValueError, match="expected '<1|0> <path>'"):
        celebdf_test_list(tmp_path)


def test_dfdc_parts(tmp_path: Path) -> None:
    for part, entries in {
        "dfdc_train_part_0": {
            "aaa.mp4": {"label": "REAL", "original": None, "split": "train"},
            "bbb.mp4": {"label": "FAKE", "original": "aaa.mp4", "split": "train"},
            "missing.mp4": {"label": "FAKE", "original": "aaa.mp4", "split": "train"},
        },
        "nested/dfdc_train_part_1": {
            "ccc.mp4": {"label": "FAKE", "original": "zzz.mp4", "split": "train"},
        },
    }.items():
        touch(tmp_path, *(f"{part}/{name}" for name in entries if name != "missing.mp4"))
        (tmp_path / part / "metadata.json").write_text(json.dumps(entries))

    videos = read_dfdc(tmp_path)
    names = by_name(videos)
    assert set(names) == {"aaa.mp4", "bbb.mp4", "ccc.mp4"}  # missing files are skipped
    assert names["aaa.mp4"].label == 0 and names["aaa.mp4"].identities == ("dfdc:aaa",)
    assert names["bbb.mp4"].label == 1 and names["bbb.mp4"].identities == ("dfdc:aaa",)
    assert names["ccc.mp4"].identities == ("dfdc:zzz",)
    assert all(v.dataset == "DFDC" for v in videos)
    assert read_dataset(tmp_path) == videos


def test_plain_folders(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "Real/clip_a.mp4",
        "Real/sub/183.avi",
        "FAKE/FaceSwap/183_253.mkv",
        "FAKE/loose.webm",
        "FAKE/readme.md",
        "other/ignored.mp4",
    )
    videos = read_folders(tmp_path)
    names = by_name(videos)
    assert set(names) == {"clip_a.mp4", "183.avi", "183_253.mkv", "loose.webm"}
    assert (names["clip_a.mp4"].label, names["clip_a.mp4"].method) == (0, "real")
    assert names["clip_a.mp4"].identities == ("clip_a",)
    assert names["183.avi"].identities == ("ff:183",)
    assert (names["183_253.mkv"].label, names["183_253.mkv"].method) == (1, "FaceSwap")
    assert names["183_253.mkv"].identities == ("ff:183", "ff:253")
    assert names["loose.webm"].method == "unknown"
    assert all(v.dataset == "folder" for v in videos)


def test_auto_detection(tmp_path: Path, ffpp: Path) -> None:
    assert read_dataset(ffpp) == read_faceforensics(ffpp)

    celeb = tmp_path / "celeb"
    touch(celeb, "Celeb-real/id0_0000.mp4", "Celeb-synthesis/id0_id1_0000.mp4")
    assert read_dataset(celeb) == read_celebdf(celeb)

    folders = tmp_path / "folders"
    touch(folders, "real/a.mp4", "fake/b.mp4")
    assert read_dataset(folders) == read_folders(folders)

    with_manifest = tmp_path / "with_manifest"
    touch(with_manifest, "real/a.mp4")
    (with_manifest / "manifest.csv").write_text("file,label\nreal/a.mp4,fake\n")
    assert [v.label for v in read_dataset(with_manifest)] == [1]  # the manifest wins
    assert read_dataset(with_manifest / "manifest.csv") == read_dataset(with_manifest)


def test_unrecognised_layouts_raise_clear_errors(tmp_path: Path) -> None:
    touch(tmp_path, "videos/a.mp4", "notes.txt")
    with pytest.raises(ValueError, match="not recognised.*FaceForensics\\+\\+.*Celeb-DF.*DFDC"):
        read_dataset(tmp_path)
    with pytest.raises(ValueError, match="not a .csv manifest"):
        read_dataset(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "absent")
    empty = tmp_path / "empty"
    (empty / "real").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no videos"):
        read_dataset(empty)


def test_manifest_reader(tmp_path: Path) -> None:
    manifest = tmp_path / "data" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "\ufefffile,label,dataset,method,identity\n"
        "videos/fake/FFPP__repo__Deepfakes__183_253.mp4,FAKE,FF++,Deepfakes,\n"
        "videos/real/FFPP__repo__youtube__183.mp4,0,FF++,,\n"
        f"videos/fake/FFPP__repo__DeepFakeDetection__{DFD_FAKE},1,FF++,,\n"
        "videos/real/FFPP__repo__actors__01__kitchen_pan.mp4,REAL,FF++,,\n"
        "videos/weak_real/other__repo__driving__d0.mp4,real,,,\n"
        "x/clip.mp4,Fake,mine,Wav2Lip,personA; personB\n"
    )
    videos = read_manifest(manifest)
    names = by_name(videos)
    root = manifest.parent.resolve()
    df = names["FFPP__repo__Deepfakes__183_253.mp4"]
    assert df.path == root / "videos/fake/FFPP__repo__Deepfakes__183_253.mp4"
    assert (df.label, df.dataset, df.method) == (1, "FF++", "Deepfakes")
    assert df.identities == ("ff:183", "ff:253")
    assert names["FFPP__repo__youtube__183.mp4"].identities == ("ff:183",)
    assert names["FFPP__repo__youtube__183.mp4"].method == "real"
    dfd = names[f"FFPP__repo__DeepFakeDetection__{DFD_FAKE}"]
    assert (dfd.identities, dfd.method) == (("dfd:01", "dfd:11"), "unknown")
    assert names["FFPP__repo__actors__01__kitchen_pan.mp4"].identities == ("dfd:01",)
    weak = names["other__repo__driving__d0.mp4"]
    assert (weak.label, weak.dataset) == (0, "manifest")
    assert weak.identities == ("other__repo__driving__d0",)
    assert names["clip.mp4"].identities == ("personA", "personB")


def test_manifest_errors(tmp_path: Path) -> None:
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("file,dataset\na.mp4,x\n")
    with pytest.raises(ValueError, match="lacks required column.*label"):
        read_manifest(no_label)
    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text("file,label\na.mp4,maybe\n")
    with pytest.raises(ValueError, match=r"bad_label.csv:2: label 'maybe'"):
        read_dataset(bad_label)


@pytest.mark.skipif(not SHARED_MANIFEST.exists(), reason="shared manifest not available")
def test_shared_manifest() -> None:
    videos = read_dataset(SHARED_MANIFEST)
    assert len(videos) == sum(1 for _ in SHARED_MANIFEST.open()) - 1
    assert {v.label for v in videos} == {0, 1}
    for seed in range(10):
        train, val = split_by_identity(videos, seed=seed)
        assert_disjoint(train, val)
        assert {v.label for v in val} == {0, 1}
        for side in (train, val):
            stems = {v.path.stem.rsplit("__", 1)[-1] for v in side if v.dataset == "FF++"}
            family = {"183", "183_253", "253_183"}
            assert not stems & family or family <= stems  # 183's family stays on one side


def make_videos(n_people: int) -> list[LabelledVideo]:
    """Per person i: a real original and a fake swapped with person (i + 1)."""
    videos = []
    for i in range(n_people):
        j = (i + 1) % n_people if i % 3 else i + 1000  # every third pair is its own component
        videos.append(LabelledVideo(Path(f"/v/{i}.mp4"), 0, "t", "real", (f"p{i}",)))
        videos.append(LabelledVideo(Path(f"/v/{i}_{j}.mp4"), 1, "t", "X", (f"p{i}", f"p{j}")))
    return videos


def test_split_is_deterministic_disjoint_and_sized() -> None:
    videos = make_videos(60)
    train, val = split_by_identity(videos, val_fraction=0.2, seed=3)
    assert (train, val) == split_by_identity(list(reversed(videos)), val_fraction=0.2, seed=3)
    assert_disjoint(train, val)
    assert sorted(train + val, key=lambda v: v.path) == sorted(videos, key=lambda v: v.path)
    assert 0.1 <= len(val) / len(videos) <= 0.3
    assert {v.label for v in val} == {0, 1} and {v.label for v in train} == {0, 1}
    assert any(split_by_identity(videos, seed=s) != (train, val) for s in range(4, 10))


def test_split_keeps_both_labels_in_val_when_possible() -> None:
    reals = [LabelledVideo(Path(f"/r/{i}.mp4"), 0, "t", "real", (f"r{i}",)) for i in range(20)]
    fakes = [LabelledVideo(Path(f"/f/{i}.mp4"), 1, "t", "X", (f"f{i}",)) for i in range(2)]
    for seed in range(10):
        train, val = split_by_identity(reals + fakes, val_fraction=0.1, seed=seed)
        assert {v.label for v in val} == {0, 1}
        assert {v.label for v in train} == {0, 1}
    # a single fake cannot be on both sides: train keeps it
    train, val = split_by_identity(reals + fakes[:1], val_fraction=0.1, seed=0)
    assert fakes[0] in train


def test_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_identity(make_videos(3), val_fraction=1.0)


def test_split_file_round_trip(tmp_path: Path) -> None:
    train, val = split_by_identity(make_videos(10), seed=1)
    path = tmp_path / "runs" / "split.csv"
    write_split(path, train, val)
    assert path.read_text().splitlines()[0] == "path,label,dataset,method,identities,split"
    assert read_split(path) == (train, val)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\n/a.mp4,1\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_split(bad)


def test_three_way_split_is_disjoint_stratified_and_deterministic() -> None:
    """Each side gets its share of every (dataset, label) cell, identities never cross sides."""
    from detector.data.datasets import split_sides

    videos = make_videos(40)
    videos += [LabelledVideo(Path(f"/o/{i}.mp4"), int(i % 4 == 0), "other", "real" if i % 4 else "X", (f"o{i}",))
               for i in range(40)]
    sides = split_sides(videos, val_fraction=0.25, test_fraction=0.25, seed=2)
    assert sides == split_sides(list(reversed(videos)), val_fraction=0.25, test_fraction=0.25, seed=2)
    assert sorted(v.path for side in sides.values() for v in side) == sorted(v.path for v in videos)
    owner = {}
    for name, side in sides.items():
        for video in side:
            for identity in video.identities:
                assert owner.setdefault(identity, name) == name
    for dataset in ("t", "other"):
        for label in (0, 1):
            cell = [v for v in videos if v.dataset == dataset and v.label == label]
            for name, share in (("val", 0.25), ("test", 0.25)):
                got = sum(v.dataset == dataset and v.label == label for v in sides[name])
                assert abs(got - share * len(cell)) <= 2, (dataset, label, name, got, len(cell))


def test_three_way_split_holds_out_the_official_test_list_and_round_trips(tmp_path: Path) -> None:
    from detector.data.datasets import read_split_sides, split_sides

    videos = make_videos(12)
    forced = {videos[0].path}
    sides = split_sides(videos, val_fraction=0.2, test_fraction=0.2, seed=0, held_out=forced)
    assert videos[0] in sides["test"] and videos[1] in sides["test"]  # its identity's other clip follows
    write_split(tmp_path / "split.csv", sides["train"], sides["val"], sides["test"])
    assert read_split_sides(tmp_path / "split.csv") == sides
    assert read_split(tmp_path / "split.csv") == (sides["train"], sides["val"])
    with pytest.raises(ValueError, match="test_fraction"):
        split_sides(videos, val_fraction=0.2, test_fraction=1.0)
    with pytest.raises(ValueError, match="at most 1"):
        split_sides(videos, val_fraction=0.6, test_fraction=0.6)
