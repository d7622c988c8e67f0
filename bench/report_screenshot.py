"""The README's picture of a report (docs/report.png): scan a generated face clip with the bundled
model and --explain, then photograph its page in headless Chromium.

    python bench/report_screenshot.py [--model DIR] [--out docs/report.png]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from detector import cli
    from detector.output.html_report import input_id
    from tests.synthetic import face_clip

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("needs headless Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        clip = face_clip(Path(folder) / "interview.mp4", seconds=4.0, size="640x480", fps=15, background="testsrc2")
        (Path(folder) / "astronaut.png").unlink()
        cli.main(["--input", str(clip), "--output", f"{folder}/results", "--model", str(args.model),
                  "--frames", "16", "--explain", "-q"])
        shot = Path(folder) / "shot.png"
        command = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000",
                   "--window-size=1000,1300", f"--screenshot={shot}",
                   Path(folder, "results", "report.html").as_uri() + f"#input={input_id(str(clip))}"]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        subprocess.run(command, check=True, capture_output=True)
        image = Image.open(shot).convert("RGB").quantize(colors=128)  # a palette PNG: a third of the bytes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
