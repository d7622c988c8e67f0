"""Training a detector: self-blended fakes, augmentation, networks, the trainer (its crops come from data/)."""
