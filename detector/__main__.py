"""`python -m detector COMMAND`: the `deepfake-detector` command without installing the package."""
import sys

from detector.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m detector"))
