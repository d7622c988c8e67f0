"""Synthetic face clips from a public-domain still (NASA's astronaut photo in scikit-image).

One recipe for the bundled sample, the tests and the benchmark, so they all exercise the same
kind of input: a real face drifting slowly over a plain background, encoded by ffmpeg.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2

from detector.scan.video import ffmpeg_binary


def ffmpeg(*args: str) -> None:
    """Run the project's ffmpeg quietly, raising on failure."""
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def astronaut_png(folder: Path) -> Path:
    import skimage.data

    path = Path(folder) / "astronaut.png"
    if not path.exists():
        cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def face_clip(path: Path, seconds: float = 2.0, size: str = "640x480", fps: int = 15, face: float = 0.8,
              extra: tuple[str, ...] = ("-preset", "ultrafast"), background: str = "color=c=gray") -> Path:
    """Encode a clip of the astronaut photo (scaled to `face` × frame height) drifting sideways over
    a lavfi `background` source (e.g. "testsrc2" for a busy, moving one)."""
    path = Path(path)
    still = astronaut_png(path.parent)
    width, height = (int(v) for v in size.split("x"))
    side = int(height * face) // 2 * 2
    graph = (f"[1:v]scale={side}:{side}[f];"
             f"[0:v][f]overlay=x='(W-w)/2+{width * 0.05}*sin(t)':y=(H-h)/2:shortest=1,format=yuv420p")
    source = f"{background}{':' if '=' in background else '='}s={size}:d={seconds}:r={fps}"
    ffmpeg("-f", "lavfi", "-i", source, "-loop", "1", "-i", str(still),
           "-filter_complex", graph, "-t", str(seconds), "-c:v", "libx264", *extra, str(path))
    return path
