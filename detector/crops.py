"""`python -m detector.crops`: the command users type; the code lives in detector.training.crops."""
import sys

from detector.training.crops import main

if __name__ == "__main__":
    sys.exit(main())
