"""The HTML report: written by every CLI scan (not with --no-report), safe with hostile names,
paged at 10,000 inputs — and loaded from disk in headless Chromium, whose rendered DOM (rows,
sort, filter, images that load) and screenshot are checked."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import face_clip, ffmpeg

from detector import cli
from detector.scan.scanner import ScanResult
from detector.files import atomic_write, csv_text
from detector.output.html_report import ROWS_PER_CHUNK, CHUNK, HtmlReport, input_id, js_call
from detector.output.results import COLUMNS, ResultsFolder, Row
from detector.scan.aggregation import Verdict
from detector.scan.video import ffmpeg_info

FRAMES = 6
# A folder and a file name that together make a path holding </script>, markup, quotes, unicode, spaces.
HOSTILE_DIR = "x<script>alert(1)<"
HOSTILE_NAME = "script> <img src=x onerror=alert(2)> \"q\" 'q' é ü\u2028.mp4"
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
skip_without_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get "
                                           "install chromium; .ci/run installs it): browser tests skipped")


def browser(test):
    """A test in headless Chromium: slow, and skipped where there is none."""
    return pytest.mark.slow(skip_without_chromium(test))


@pytest.fixture(scope="module")
def scanned(brightness_model, tmp_path_factory) -> Path:
    """A CLI scan with --explain of a face clip, the same clip under a hostile name, an unreadable
    file and a clip with no face."""
    folder = tmp_path_factory.mktemp("report")
    inputs = folder / "in"
    (inputs / HOSTILE_DIR).mkdir(parents=True)
    clip = face_clip(inputs / "clip.mp4", seconds=1.0, size="320x240", fps=10)
    shutil.copy(clip, inputs / HOSTILE_DIR / HOSTILE_NAME)
    (inputs / "astronaut.png").unlink()
    (inputs / "broken.mp4").write_bytes(b"not a video")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1", "-pix_fmt", "yuv420p",
           str(inputs / "noface.mp4"))
    code = cli.main(["--input", str(inputs), "--output", str(folder / "out"), "--model", str(brightness_model),
                     "--frames", str(FRAMES), "--explain", "-q"])
    assert code == 1  # broken.mp4 is unreadable
    return folder / "out"


def data_call(path: Path) -> list:
    """The arguments of the REPORT.…(…) call a data file makes."""
    text = path.read_text(encoding="ascii")  # everything beyond ASCII is escaped
    return json.loads("[" + text[text.index("(") + 1:text.rindex(")")] + "]")


def test_every_scan_writes_the_report_and_no_report_turns_it_off(scanned, brightness_model, tmp_path, capsys):
    assert (scanned / "report.html").is_file()
    (index,) = data_call(scanned / "report" / "index.js")
    assert index["inputs"] == 4 and index["statuses"] == {"ok": 2, "unreadable": 1, "no_face": 1}
    assert not index["running"]
    assert (index["ffmpeg"], index["ffmpeg_version"]) == (ffmpeg_info().path, ffmpeg_info().version)
    _, rows = data_call(scanned / "report" / "rows" / "00000.js")
    assert [r["name"] for r in rows] == ["broken.mp4", "clip.mp4", "noface.mp4", HOSTILE_NAME]
    assert {r["id"] for r in rows} == {input_id(r["path"]) for r in rows}
    for row in rows:  # every input has a page; every picture it names exists
        (_, page) = data_call(scanned / "report" / "inputs" / f"{row['id']}.js")
        pictures = [c["src"] for t in page["tracks"] for c in t["crops"]] + [h["src"] for h in page["heatmaps"]]
        assert all((scanned / src).is_file() for src in pictures)
        if row["status"] == "ok":
            assert len(page["heatmaps"]) == 3 and page["method"] == "occlusion"
            assert len(page["tracks"][0]["crops"]) == FRAMES and row["thumb"] == page["tracks"][0]["crops"][0]["src"]
            scores = [c["p"] for c in page["tracks"][0]["crops"]]
            assert scores == sorted(scores, reverse=True)
            assert cv2.imread(str(scanned / row["thumb"])).shape == (96, 96, 3)
    clip = scanned.parent / "in" / "clip.mp4"
    assert cli.main(["--input", str(clip), "--output", str(tmp_path / "r"), "--model", str(brightness_model),
                     "--frames", str(FRAMES), "-q"]) == 0
    assert f"Report: {tmp_path / 'r' / 'report.html'}" in capsys.readouterr().err
    assert cli.main(["--input", str(clip), "--output", str(tmp_path / "o"), "--model", str(brightness_model),
                     "--frames", str(FRAMES), "--no-report", "-q"]) == 0
    assert not (tmp_path / "o" / "report.html").exists() and not (tmp_path / "o" / "report").exists()
    assert "Report:" not in capsys.readouterr().err


def test_data_files_cannot_be_read_as_markup():
    text = js_call("rows", 0, [{"name": "</script><img src=x onerror=alert(1)> & \u2028 é"}])
    assert text.isascii() and not re.search(r"[<>&]", text)
    assert json.loads(CHUNK.fullmatch(text)[2]) == [{"name": "</script><img src=x onerror=alert(1)> & \u2028 é"}]


def test_report_files_are_named_by_id_never_by_input(scanned):
    names = [p.relative_to(scanned / "report").as_posix() for p in (scanned / "report").rglob("*")]
    assert all(re.fullmatch(r"[a-z0-9./]+", n) for n in names), names


def test_rescans_replace_an_input_in_place_and_resume_keeps_the_rest(scanned, tmp_path):
    broken = str(scanned.parent / "in" / "broken.mp4")
    scanned = Path(shutil.copytree(scanned, tmp_path / "out"))
    results = ResultsFolder(scanned)
    report = HtmlReport(results)
    before = [r["id"] for r in report.records]
    row = results.rows[broken]
    report.add(row, None)  # already in the results: nothing to do
    report.add(Row(row.path, "unreadable", error="rescanned"), ScanResult(row.path, "unreadable", error="rescanned"))
    report.close()
    again = HtmlReport(ResultsFolder(scanned)).records
    assert [r["id"] for r in again] == before and again[0]["error"] == "rescanned"


def ten_thousand(folder: Path) -> ResultsFolder:
    """A results folder of 10,000 rows (no report yet), written whole rather than row by row."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10_000):
        p = float(rng.random())
        status = "ok" if i % 10 else "unreadable"
        rows.append(Row(f"/videos/clip {i:05d}.mp4", status, ("FAKE" if p >= 0.5 else "REAL") if status == "ok" else "",
                        p if status == "ok" else None, 32, 32, 1, 2.0, "" if status == "ok" else "moov atom not found"))
    atomic_write(folder / "results.csv", csv_text([COLUMNS, *(r.to_csv() for r in rows)]))
    return ResultsFolder(folder)


def test_inputs_scanned_without_a_report_are_listed_when_one_is_made(tmp_path):
    report = HtmlReport(ten_thousand(tmp_path))
    assert len(report.records) == 10_000 and not report.records[0]["page"]
    assert len(list((tmp_path / "report" / "rows").glob("*.js"))) == 10_000 // ROWS_PER_CHUNK


def test_adding_an_input_costs_the_same_however_many_came_before(tmp_path):
    """A batch of 100,000 inputs (99,990 of them missing, say) must not slow down as it goes: adding
    one visits its own chunk of rows, never every record so far (which made a batch quadratic)."""
    class Visited(list):
        count = 0

        def __iter__(self):
            for record in super().__iter__():
                Visited.count += 1
                yield record

        def __getitem__(self, index):
            got = super().__getitem__(index)
            Visited.count += len(got) if isinstance(index, slice) else 1
            return got

    report = HtmlReport(ten_thousand(tmp_path))
    report.records = Visited(report.records)
    for i in range(100):
        report.add(Row(f"/videos/missing {i}.mp4", "unreadable", error="file not found", seconds=0.01), None)
    rescan = Row("/videos/clip 00001.mp4", "ok", "FAKE", 0.9, seconds=3.0)  # replaces its record, in place
    verdict = Verdict(p_fake=0.9, label="FAKE", p_raw=0.9, aggregate="mean", threshold=0.5, tracks=[], reason="test")
    report.add(rescan, ScanResult(rescan.path, "ok", verdict=verdict, seconds=3.0))
    assert Visited.count <= 101 * (ROWS_PER_CHUNK + 1)  # 10,100 records: recounting them all was 10⁶
    (index,) = data_call(tmp_path / "report" / "index.js")
    records = list(report.records)
    assert index["inputs"] == len(records) == 10_100
    assert index["statuses"] == dict(Counter(r["status"] for r in records))
    assert index["labels"] == dict(Counter(r["label"] for r in records if r["label"]))
    assert index["seconds"] == round(sum(r["seconds"] for r in records), 1)


# --- in the browser -------------------------------------------------------------------------------

class Dom(HTMLParser):
    """The elements of a dumped page: (tag, attributes, text directly inside)."""

    VOID = {"img", "br", "meta", "link", "input", "hr", "source", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict, list[str]]] = []
        self._open: list[tuple[str, list[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        text: list[str] = []
        self.elements.append((tag, dict(attrs), text))
        if tag not in self.VOID:
            self._open.append((tag, text))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self._open:
            self._open[-1][1].append(data)

    def find(self, tag: str, **attrs) -> list[tuple[str, dict, list[str]]]:
        return [e for e in self.elements if e[0] == tag and all(e[1].get(k) == v for k, v in attrs.items())]


def chromium(page: Path, fragment: str = "", *extra: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000",
               "--window-size=1280,900", *extra, page.as_uri() + fragment]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def render(page: Path, fragment: str = "") -> Dom:
    dom = Dom(chromium(page, fragment, "--dump-dom").stdout)
    assert dom.find("body", **{"data-ready": "1"}), "the page did not finish rendering"
    return dom


def rows_of(dom: Dom) -> list[dict]:
    return [e[1] for e in dom.elements if e[0] == "tr" and e[1].get("class") == "row"]


def scripts_are_ours(dom: Dom) -> bool:
    return all(e[1].get("src", "").startswith("report/") for e in dom.find("script"))


@browser
def test_index_renders_rows_with_loaded_thumbnails_and_names_as_text(scanned):
    dom = render(scanned / "report.html")
    assert len(rows_of(dom)) == 4
    thumbs = [e[1] for e in dom.find("img")]
    assert len(thumbs) == 2 and all(t.get("data-loaded") == "1" for t in thumbs)  # the two clips with a face
    assert not dom.find("img", src="x") and scripts_are_ours(dom)  # nothing from a name became an element
    names = ["".join(e[2]) for e in dom.elements if e[0] == "a" and e[1].get("href", "").startswith("#input=")]
    assert HOSTILE_NAME in names
    (index,) = data_call(scanned / "report" / "index.js")
    fake, real = index["labels"].get("FAKE", 0), index["labels"].get("REAL", 0)
    summary = " ".join("".join(e[2]) for e in dom.elements if e[0] == "span")
    assert f"4 inputs · {fake} FAKE · {real} REAL · 1 no_face · 1 unreadable · 0 error" in summary
    assert f" · ffmpeg {ffmpeg_info().version} ({ffmpeg_info().path})" in summary  # which ffmpeg made the verdicts


@browser
def test_sorting_and_filtering_follow_the_address(scanned):
    _, rows = data_call(scanned / "report" / "rows" / "00000.js")
    p_fake = {r["id"]: r["p_fake"] for r in rows}
    down = [p_fake[r["data-id"]] for r in rows_of(render(scanned / "report.html", "#sort=p_fake&dir=desc"))]
    assert down[:2] == sorted(down[:2], reverse=True) and down[2:] == [None, None]  # no score: last either way
    up = [p_fake[r["data-id"]] for r in rows_of(render(scanned / "report.html", "#sort=p_fake&dir=asc"))]
    assert up[:2] == sorted(up[:2]) and up[2:] == [None, None]
    by_name = rows_of(render(scanned / "report.html", "#sort=name&dir=desc"))
    assert [r["data-id"] for r in by_name] == [r["id"] for r in sorted(rows, key=lambda r: r["name"], reverse=True)]
    unreadable = rows_of(render(scanned / "report.html", "#status=unreadable"))
    assert [r["data-status"] for r in unreadable] == ["unreadable"]
    labels = {r["label"] for r in rows if r["label"]}
    for label in labels:
        shown = rows_of(render(scanned / "report.html", f"#verdict={label}"))
        assert shown and {r["data-label"] for r in shown} == {label}


@browser
def test_an_input_page_shows_its_crops_timeline_and_heatmaps(scanned):
    dom = render(scanned / "report.html", f"#input={input_id(str(scanned.parent / 'in' / HOSTILE_DIR / HOSTILE_NAME))}")
    assert "".join(dom.find("h2", id="input-name")[0][2]) == HOSTILE_NAME
    assert not dom.find("img", src="x") and scripts_are_ours(dom)
    images = [e[1] for e in dom.find("img")]
    assert len(images) == FRAMES + 3 and all(i.get("data-loaded") == "1" for i in images)
    assert len(dom.find("svg")) == 1 and len(dom.find("polyline")) == 1 and len(dom.find("circle")) == FRAMES
    assert dom.find("line", **{"class": "threshold"})
    verdict = " ".join("".join(e[2]) for e in dom.elements if e[0] == "span")
    assert re.search(r"p_fake 0\.\d{3} — mean of 6 crops of the one face track; .* threshold 0\.500 → (FAKE|REAL)", verdict)
    heading = "".join("".join(e[2]) for e in dom.find("h3") if "".join(e[2]).startswith("Face track"))
    assert re.fullmatch(r"Face track 0: 6 crops, mean p_fake 0\.\d{3}, faces about \d+ px", heading)


@browser
def test_ten_thousand_inputs_are_paged(tmp_path):
    report = HtmlReport(ten_thousand(tmp_path))
    report.close()
    dom = render(tmp_path / "report.html", "#page=100")
    table = dom.find("table", id="inputs")[0][1]
    assert (table["data-page"], table["data-pages"], table["data-shown"]) == ("100", "100", "10000")
    assert len(rows_of(dom)) == ROWS_PER_CHUNK
    top = rows_of(render(tmp_path / "report.html", "#sort=p_fake&dir=desc&status=ok"))[0]
    best = max((r for r in report.records if r["status"] == "ok"), key=lambda r: r["p_fake"])
    assert top["data-id"] == best["id"]


@browser
def test_screenshot_is_not_blank(scanned, tmp_path):
    shot = tmp_path / "report.png"
    chromium(scanned / "report.html", "", f"--screenshot={shot}")
    pixels = cv2.imread(str(shot))
    assert pixels.shape[:2] == (900, 1280)
    assert pixels.std() > 20  # text, thumbnails and the table on the page, not one flat colour
