"""`python -m detector.train`: the command users type; the code lives in detector.training.train."""
import sys

from detector.training.train import main

if __name__ == "__main__":
    sys.exit(main())
