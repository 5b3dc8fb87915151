"""Scoring a model over only the labels it has: the "shared labels" variant of the study summary (pure numpy).

A model that lacks some of a study's labels (a 7-class FER2013 network on an 8-label AffectNet study) gives
them probability 0, so over all labels every vote for a missing label counts against it. The shared-labels
variant asks how well it does on what it can say at all:

- the shared labels are the study labels the model has, in study order (K' of the K);
- both distributions are restricted to them and renormalised: h'_k = h_k / sum_{j shared} h_j, and p'_k
  likewise (a no-op for EmoStudy's predictions, which already give the missing labels 0);
- an image whose human votes fall entirely on missing labels has no distribution over the shared labels
  (0/0): it is left out of the figures and counted (`left_out`), never scored;
- a prediction with no mass on the shared labels (impossible through study.analysis.label_mapping, which
  falls back to uniform over them) becomes uniform over the shared labels, as the mapping would make it.

The figures are then study.analysis.metrics.summary over the kept images with K' labels: normalised entropy
divides by log K', the confusion matrix is K' x K' in shared-label order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from study.analysis import metrics

__all__ = ["LABEL_SCOPES", "SharedLabels", "shared_mask", "restrict_to_shared", "restrict_counts",
           "shared_label_summary"]

LABEL_SCOPES = {"all": "all labels", "shared": "shared labels only"}


def shared_mask(study_labels: Sequence[str], missing: Sequence[str]) -> np.ndarray:
    """(K,) bool: True for the study labels the model has."""
    absent = set(missing)
    return np.array([label not in absent for label in study_labels], dtype=bool)


@dataclass
class SharedLabels:
    """Distributions restricted to the shared labels. h, p: (M, K') over the kept images; kept: (N,) bool over
    the input rows; left_out: rows whose human mass was all on missing labels."""

    h: np.ndarray
    p: np.ndarray
    kept: np.ndarray
    left_out: int


def _renormalise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = rows.sum(-1, keepdims=True)
    positive = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positive, rows / np.where(positive, total, 1.0), np.nan), positive[..., 0]


def restrict_to_shared(h: np.ndarray, p: np.ndarray, shared: np.ndarray) -> SharedLabels:
    """h, p (N, K) human and model distributions (finite rows), shared (K,) bool -> SharedLabels."""
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    shared = np.asarray(shared, dtype=bool)
    h_shared, kept = _renormalise(h[:, shared])
    p_shared, predicted = _renormalise(p[:, shared])
    p_shared[~predicted] = 1.0 / max(int(shared.sum()), 1)
    return SharedLabels(h=h_shared[kept], p=p_shared[kept], kept=kept, left_out=int((~kept).sum()))


def shared_label_summary(h: np.ndarray, p: np.ndarray, shared: np.ndarray) -> tuple[metrics.Summary, int]:
    """Study-level agreement over the shared labels only, and how many images were left out because every
    human vote fell on a label the model lacks."""
    restricted = restrict_to_shared(h, p, shared)
    return metrics.summary(restricted.h, restricted.p), restricted.left_out


def restrict_counts(counts: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """(N, K) vote counts -> (M, K') the shared labels' counts of the images with at least one vote on them
    (the human ceilings of the shared-labels variant are computed from these)."""
    counts = np.asarray(counts)[:, np.asarray(shared, dtype=bool)]
    return counts[counts.sum(1) > 0]
