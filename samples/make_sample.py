"""Regenerate the bundled sample clip: python samples/make_sample.py

A real face (NASA's public-domain astronaut photo from scikit-image) drifting over a grey
background, 4 s of 1280×720 H.264: small enough to ship, real enough to scan.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.synthetic import face_clip  # noqa: E402

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    face_clip(here / "astronaut.mp4", seconds=4.0, size="1280x720", fps=25, face=0.6,
              extra=("-preset", "slow", "-crf", "26", "-movflags", "+faststart"))
    (here / "astronaut.png").unlink(missing_ok=True)
    print(here / "astronaut.mp4")
