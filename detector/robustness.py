"""`python -m detector.robustness`: the command users type; the code lives in detector.evaluation.robustness."""
import sys

from detector.evaluation.robustness import main

if __name__ == "__main__":
    sys.exit(main())
