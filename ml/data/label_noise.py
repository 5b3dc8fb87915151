"""Synthetic label noise, the protocol of ULDL's Table 1: flip a fraction of the training labels uniformly
to one of the other classes. numpy only.

Exactly round(rate * N) labels are flipped (not each with probability `rate`), so every seed of a noise
level corrupts the same number of images, and the flips depend only on (labels, rate, num_classes, seed).
"""
from __future__ import annotations

import numpy as np

__all__ = ["apply_label_noise"]


def apply_label_noise(labels, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * N) labels, each to a uniformly chosen class other than its own.

    Args:
        labels: (N,) ints in [0, num_classes).
        rate: fraction of labels to flip, in [0, 1].
        num_classes: number of classes (>= 2).
        seed: makes the choice of images and of new classes reproducible.
    Returns:
        noisy labels (N,) int64 (a new array) and the flipped mask (N,) bool.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"noise rate must be in [0, 1], got {rate}")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes, got {num_classes}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    n = len(labels)
    n_flip = int(round(float(rate) * n))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=n_flip, replace=False) if n_flip else np.zeros(0, dtype=np.int64)
    # An offset in 1..C-1 added modulo C picks one of the C-1 other classes uniformly.
    offsets = rng.integers(1, num_classes, size=n_flip)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + offsets) % num_classes
    flipped = np.zeros(n, dtype=bool)
    flipped[chosen] = True
    return noisy, flipped
