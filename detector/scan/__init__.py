"""The scanner: its stages (video → faces → tracking → crop → model → aggregation) and scanner.py, which ties them into Scanner.scan."""
