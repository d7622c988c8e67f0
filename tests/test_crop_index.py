"""The crop index and done-list grow by appends: a crash mid-write is repaired on the next build."""
from __future__ import annotations

import csv
from pathlib import Path

from detector.files import append_csv, csv_text, read_csv_log
from detector.data import crops


def test_read_csv_log_drops_only_a_torn_last_record(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(csv_text([["a", "b"], ["1", 'two\nlines, "quoted"']]), encoding="utf-8")
    append_csv(path, [["3", "4"]])
    assert read_csv_log(path) == ([["a", "b"], ["1", 'two\nlines, "quoted"'], ["3", "4"]], False)
    text = path.read_text(encoding="utf-8")
    for cut in (len(text) - 1, len(text) - 3, text.index("lines")):
        path.write_text(text[:cut], encoding="utf-8")
        records, torn = read_csv_log(path)
        assert torn and records == [["a", "b"], ["1", 'two\nlines, "quoted"']][: len(records)]
        assert len(records) == (2 if cut > text.index("3,4") else 1)


def test_build_drops_torn_rows_and_rows_of_clips_not_done(tmp_path):
    out = tmp_path / "crops"
    out.mkdir()
    row = ["k/0000.png", "/v/done.mp4", 1, "FF++", "Deepfakes", "1;2", 0, "0.0000", 0, " ".join(["1.00"] * 10)]
    undone = [row[0].replace("k/", "u/"), "/v/crashed.mp4", *row[2:]]
    (out / "index.csv").write_text(csv_text([crops.INDEX_COLUMNS, row, undone]) + "u/0001.png,/v/cra",
                                   encoding="utf-8")
    (out / "videos.csv").write_text(csv_text([crops.DONE_COLUMNS, ["/v/done.mp4", "ok", 1]]) + "/v/crashed.mp4,o",
                                    encoding="utf-8")
    assert crops.build([], out, frames=1, crop_size=64, progress=False) == 0
    with (out / "index.csv").open(newline="", encoding="utf-8") as handle:
        assert [r["video"] for r in csv.DictReader(handle)] == ["/v/done.mp4"]
    assert read_csv_log(out / "videos.csv") == ([crops.DONE_COLUMNS, ["/v/done.mp4", "ok", "1"]], False)
    assert [r.video for r in crops.read_index(out)] == ["/v/done.mp4"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert Path(out / "index.csv").read_text(encoding="utf-8").endswith("\n")


def test_tight_stills_are_mirror_extended_so_their_crops_have_no_black_margin(tmp_path):
    import cv2
    import skimage.data

    from detector.data.datasets import LabelledVideo

    x1, y1, x2, y2 = 176, 56, 272, 176  # the astronaut's face, cut as tightly as the FF++ crop pool's stills
    still = tmp_path / "tight.png"
    cv2.imwrite(str(still), cv2.cvtColor(skimage.data.astronaut()[y1:y2, x1:x2], cv2.COLOR_RGB2BGR))
    item = [LabelledVideo(still, 0, "pool", "real", ("pool:a",))]

    def dark_border_rows(out: Path, margin: float) -> int:
        crops.build(item, out, frames=1, crop_size=112, progress=False, photo_margin=margin)
        (record,) = crops.read_index(out)
        image = record.image()
        return sum(int(line.max() < 8) for line in (*image[:12], *image[-12:], *image[:, :12].transpose(1, 0, 2),
                                                   *image[:, -12:].transpose(1, 0, 2)))

    assert dark_border_rows(tmp_path / "as_is", 0.0) > 0
    assert dark_border_rows(tmp_path / "extended", crops.PHOTO_MARGIN) == 0


def test_an_index_without_source_regions_is_refused(tmp_path):
    """Crops built before source regions cannot make self-blends: building on them says so."""
    import pytest

    out = tmp_path / "crops"
    out.mkdir()
    (out / "index.csv").write_text(csv_text([crops.INDEX_COLUMNS[:10]]), encoding="utf-8")
    with pytest.raises(ValueError, match="older version"):
        crops.build([], out, frames=1, crop_size=64, progress=False)
