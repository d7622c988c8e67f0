"""Labelled datasets (FaceForensics++, Celeb-DF, DFDC, CSV manifests, photo folders) and identity-disjoint splits, for training and evaluation alike."""
