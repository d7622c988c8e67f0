"""`python -m detector.evaluate`: the command users type; the code lives in detector.evaluation.evaluate."""
import sys

from detector.evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
