"""deepfake-detector: say whether face videos are deepfakes, how sure, and why.

`python app.py ...` is the same command as the `deepfake-detector` script: detector.cli; see README.md.
"""
import sys

from detector.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="app.py"))
