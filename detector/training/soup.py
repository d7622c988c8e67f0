"""Average the weights of several runs of one recipe into one network: a uniform model soup.

    deepfake-detector soup --model work/seed_0/model --model work/seed_1/model --model work/seed_2/model --out work/soup

Runs fine-tuned from the same ImageNet start with a small learning rate stay in one basin of the
loss, so the average of their weights is itself a good network (Wortsman et al., 2022). It keeps
much of what an ensemble of the runs gains over one run, at the size and speed of one network.
Every ingredient must be a tf_keras SavedModel of the same architecture (what `train` exports).
The soup is exported in the same format, with the data card of the first ingredient and a list
of all of them. Its threshold is 0.5: `select` sets the verdict rule and calibration afterwards.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

from detector.runtime import command_line, keras
from detector.scan.model import Contract
from detector.training.train import export


def average_weights(models: list[keras.Model]) -> list[np.ndarray]:
    """The element-wise mean of each weight over the models; ValueError where their shapes differ."""
    shapes = [[w.shape for w in model.get_weights()] for model in models]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError("the models differ in architecture (their weight shapes do not match); "
                         "a soup needs runs of one recipe")
    return [np.mean(stack, axis=0).astype(stack[0].dtype) for stack in zip(*(m.get_weights() for m in models))]


def soup(folders: list[Path], out: Path, command: str = "") -> Path:
    """Load each SavedModel, average, export to `out`; returns `out`."""
    if len(folders) < 2:
        raise ValueError("a soup needs at least two models")
    for folder in folders:
        if not (folder / "keras_metadata.pb").is_file():
            raise FileNotFoundError(f"{folder}: not a tf_keras SavedModel (no keras_metadata.pb); "
                                    "soups are made of models exported by deepfake-detector train")
    models = [keras.models.load_model(str(folder), compile=False) for folder in folders]
    weights = average_weights(models)
    model = models[0]
    model.set_weights(weights)
    card = Contract.read(folders[0] / "model.json", None).card
    card = {**card, "name": f"{card.get('name', 'deepfake-detector')} (uniform soup of {len(folders)} runs)",
            "soup": [str(folder) for folder in folders], "validation": None, "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return export(model, out, threshold=0.5, card=card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepfake-detector soup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True,
                        help="a SavedModel folder exported by deepfake-detector train (two or more)")
    parser.add_argument("--out", type=Path, required=True, help="the soup's SavedModel folder")
    args = parser.parse_args(argv)
    command = command_line("soup", argv)
    try:
        folder = soup(args.model, args.out, command)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {folder}: the mean of {len(args.model)} models' weights", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
