"""The HTML report: RESULTS/report.html, readable offline in any browser, updated as inputs finish.

report.html and its script and style are static copies of detector/assets/. The data sits beside
them under RESULTS/report/ as small JavaScript files the page loads with <script src> (a page
opened from disk may not fetch() files):
  report/index.js            the batch summary and how many row chunks there are
  report/rows/NNNNN.js       the index rows, ROWS_PER_CHUNK inputs per file
  report/inputs/<id>.js      one input's page: verdict, reason, video facts, tracks, timeline
  report/inputs/<id>/*.jpg   its crop thumbnails and heat-maps
An input costs its own files plus one chunk and the summary rewritten, so the 10,000th input
costs about what the first did (bench/report_cost.py). <id> is a hash of the input's path: no file name the report writes or
links comes from an input. Data goes in as JSON with <, > and & escaped and everything outside
ASCII as \\u escapes; the page renders it with textContent and setAttribute, never as HTML.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from detector.files import atomic_write
from detector.scan.scanner import ScanResult
from detector.output.results import ResultsFolder, Row

ASSETS = Path(__file__).resolve().parent / "assets"
ROWS_PER_CHUNK = 100
CHUNK = re.compile(r"REPORT\.rows\((\d+), (.*)\);\s*", re.S)


def input_id(path: str) -> str:
    """The input's name in the report's files and links: a hash, never the input's own name."""
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def js_call(function: str, *args: object) -> str:
    """`REPORT.function(args…);` with each argument as JSON that cannot close a <script> or be
    read as markup: <, > and & escaped, and every non-ASCII character (U+2028 included) too."""
    data = (json.dumps(a, separators=(",", ":"), allow_nan=False) for a in args)
    text = ", ".join(d.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") for d in data)
    return f"REPORT.{function}({text});\n"


class HtmlReport:
    """The report of one results folder; `add` each input as it finishes, `close` at the end."""

    def __init__(self, results: ResultsFolder):
        self.results = results
        self.html_path = results.folder / "report.html"
        self.folder = results.folder / "report"
        self.records: list[dict] = []
        self.position: dict[str, int] = {}
        self.summary: dict = {}
        # the index's counts, kept as records come and go: recounting every record for each input
        # made a batch quadratic (100,000 inputs: 1.5·10¹⁰ record visits)
        self.statuses: Counter = Counter()
        self.labels: Counter = Counter()
        self.seconds = 0.0
        for chunk in sorted((self.folder / "rows").glob("*.js")):
            match = CHUNK.fullmatch(chunk.read_text(encoding="utf-8"))
            for record in json.loads(match[2]) if match else []:
                self._place(record)
        for row in results.rows.values():  # inputs recorded without a report (e.g. --no-report)
            if input_id(row.path) not in self.position:
                self._place(_record(row, page=False))
        atomic_write(self.html_path, (ASSETS / "report.html").read_bytes())
        for name in ("report.js", "report.css"):
            atomic_write(self.folder / name, (ASSETS / name).read_bytes())
        self._write_rows(range(0, len(self.records), ROWS_PER_CHUNK))
        self._write_index(running=True)

    def add(self, row: Row, result: ScanResult | None) -> None:
        """One input's row (and its scan, None when it was already in the results)."""
        if result is None and input_id(row.path) in self.position:
            return
        record = _record(row, page=result is not None)
        if result is not None:
            record["thumb"] = self._write_input(record["id"], result)
            self.summary = {"model": result.model.get("path", ""), "fingerprint": result.model.get("fingerprint", ""),
                            "ffmpeg": result.ffmpeg.get("path", ""), "ffmpeg_version": result.ffmpeg.get("version", ""),
                            "settings": asdict(result.settings)}
        self._write_rows([self._place(record) // ROWS_PER_CHUNK * ROWS_PER_CHUNK])
        self._write_index(running=True)

    def close(self) -> None:
        """Mark the batch finished (the page stops saying it is in progress)."""
        self._write_index(running=False)

    def _place(self, record: dict) -> int:
        """Put a record in its input's place (new inputs at the end); its position."""
        at = self.position.setdefault(record["id"], len(self.records))
        if at == len(self.records):
            self.records.append(record)
        else:
            self._count(self.records[at], -1)
        self.records[at] = record
        self._count(record, 1)
        return at

    def _count(self, record: dict, sign: int) -> None:
        self.statuses[record["status"]] += sign
        if record["label"]:
            self.labels[record["label"]] += sign
        self.seconds += sign * record["seconds"]

    def _write_rows(self, starts) -> None:
        for start in starts:
            atomic_write(self.folder / "rows" / f"{start // ROWS_PER_CHUNK:05d}.js",
                         js_call("rows", start // ROWS_PER_CHUNK, self.records[start:start + ROWS_PER_CHUNK]))

    def _write_index(self, running: bool) -> None:
        atomic_write(self.folder / "index.js", js_call("index", {
            "inputs": len(self.records), "chunks": -(-len(self.records) // ROWS_PER_CHUNK),
            "statuses": dict(+self.statuses), "labels": dict(+self.labels), "running": running,
            "seconds": max(0.0, round(self.seconds, 1)),  # a sum kept by adding and taking away: no -0.0
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"), **self.summary}))

    def _write_input(self, key: str, result: ScanResult) -> str:
        """Write one input's page data and pictures; the index thumbnail's address ("" if none)."""
        folder = self.folder / "inputs" / key
        pictures = {f"t{i}.jpg": data for i, data in result.evidence.thumbnails.items()}
        pictures |= {f"h{i}.jpg": data for i, data in result.evidence.heatmaps.items()}
        for name, data in pictures.items():
            atomic_write(folder / name, data)
        if folder.is_dir():  # pictures of an earlier scan of this input
            for old in folder.iterdir():
                if old.name not in pictures:
                    old.unlink(missing_ok=True)
        page = _page(result, f"report/inputs/{key}/")
        atomic_write(self.folder / "inputs" / f"{key}.js", js_call("input", key, page))
        return page["top"]


def _record(row: Row, page: bool) -> dict:
    """One index row: what results.csv says about the input, and where its page and thumbnail are."""
    return {"id": input_id(row.path), "name": Path(row.path).name, "path": row.path, "status": row.status,
            "label": row.label, "p_fake": None if row.p_fake is None else round(row.p_fake, 4),
            "faces": row.n_faces, "tracks": row.n_tracks, "seconds": round(row.seconds, 2), "error": row.error,
            "details": row.details, "page": page, "thumb": ""}


def _page(result: ScanResult, pictures: str) -> dict:
    """One input's page: the verdict and its reason, the video's facts, each track's crops
    (most suspicious first) and its p_fake over time, and the heat-maps."""
    faces = [(frame.time, face) for frame in result.frames for face in frame.faces]  # by crop number
    evidence = result.evidence

    def crop(i: int, prefix: str) -> dict:
        time_, face = faces[i]
        return {"src": f"{pictures}{prefix}{i}.jpg", "p": round(face.p_fake, 4), "t": time_, "track": face.track}

    tracks = []
    for track in result.tracks:
        shown = sorted((i for i in evidence.thumbnails if faces[i][1].track == track.track),
                       key=lambda i: -faces[i][1].p_fake)
        tracks.append({**asdict(track), "p_fake": round(track.p_fake, 4), "crops": [crop(i, "t") for i in shown],
                       "points": [[t, round(f.p_fake, 4)] for t, f in faces if f.track == track.track]})
    top = max(evidence.thumbnails, key=lambda i: faces[i][1].p_fake, default=None)
    verdict = result.verdict
    return {
        "name": Path(result.path).name, "path": result.path, "status": result.status, "label": result.label,
        "p_fake": result.p_fake, "p_raw": result.p_raw, "error": result.error, "seconds": round(result.seconds, 2),
        "reason": verdict.reason if verdict else "", "threshold": _threshold(result),
        "video": asdict(result.video) if result.video else None, "frames": result.n_frames,
        "times": [frame.time for frame in result.frames], "tracks": tracks,
        "heatmaps": [crop(i, "h") for i in evidence.heatmaps], "method": evidence.method,
        "top": "" if top is None else f"{pictures}t{top}.jpg",
    }


def _threshold(result: ScanResult) -> float | None:
    """The threshold the verdict used (or would have: the set one, else the model's)."""
    if result.verdict is not None:
        return result.verdict.threshold
    if result.settings.threshold is not None:
        return result.settings.threshold
    return result.model.get("contract", {}).get("threshold")
