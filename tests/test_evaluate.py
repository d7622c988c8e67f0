"""deepfake-detector evaluate on a FaceForensics++ layout: each fake is also compared with its own original."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT
from synthetic import face_clip, ffmpeg


def test_evaluator_pairs_each_fake_with_its_own_original(tmp_path, brightness_model):
    """Two scenes, 183 brighter than 253, each with a fake a little brighter than its own original:
    the brightness model ranks every fake above its own original, but also scene 183's original
    above scene 253's fake, so the plain AUC is 3/4 and the one over own-original pairs 2/2."""
    root = tmp_path / "ffpp"
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
    originals.mkdir(parents=True)
    fakes.mkdir(parents=True)
    base = face_clip(tmp_path / "base.mp4", seconds=1.0, size="480x360")
    for path, brightness in ((originals / "183.mp4", 0.2), (fakes / "183_253.mp4", 0.3),
                             (originals / "253.mp4", 0.0), (fakes / "253_183.mp4", 0.1)):
        ffmpeg("-i", str(base), "-vf", f"eq=brightness={brightness}", "-c:v", "libx264", "-preset", "ultrafast",
               str(path))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "detector", "evaluate", "--model", str(brightness_model),
                           "--data", str(root), "--out", str(tmp_path / "eval"), "--frames", "4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["metrics"]["all"]["auc"] == 0.75
    assert metrics["paired"] == {"pairs": 2, "fake_above": 2.0, "auc": 1.0, "scenes": 2}
    assert "fakes above the real clip of their own scene: 2 of 2 pairs (2 scenes; AUC over these pairs 1.000)" \
        in proc.stdout
