"""deepfake-detector: say whether face videos are deepfakes, how sure, and why.

`python app.py ...` is `deepfake-detector scan ...` (detector.cli); see README.md.
"""
import sys

from detector.cli import scan_main


def main(argv: list[str] | None = None) -> int:
    """Scan, as `deepfake-detector scan` does; the exit status."""
    return scan_main(argv, prog="python app.py")


if __name__ == "__main__":
    sys.exit(main())
