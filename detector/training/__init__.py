"""Training a detector: face crops made by the scanner's own stages, self-blended fakes, augmentation, networks, the trainer."""
