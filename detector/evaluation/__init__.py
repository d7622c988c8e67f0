"""Measuring a model: metrics (the bottom, shared with the trainer), the report, the evaluator and the re-encoding robustness scan."""
