"""The label-distribution-learning metric set (Geng 2016, "Label Distribution Learning", Table 3) plus JS.

h (..., K) the reference (human) distribution, p (..., K) the prediction; every function is vectorised over
the leading axes and returns (...,). Distances (lower is better): Chebyshev, Clark, Canberra, KL, JS;
similarities (higher is better): cosine, intersection.

- Chebyshev  max_k |h_k - p_k|
- Clark      sqrt(sum_k (h_k - p_k)^2 / (h_k + p_k)^2)
- Canberra   sum_k |h_k - p_k| / (h_k + p_k)
  (Clark and Canberra terms with h_k = p_k = 0 are 0/0 and count as 0, the limit along h = p.)
- KL         KL(h || p') in nats, p' smoothed as in study metrics (eps 1e-6) so a zero prediction is finite
- cosine     h.p / (|h| |p|)
- intersection sum_k min(h_k, p_k)
- JS         base-2 Jensen-Shannon divergence in [0, 1]
"""
from __future__ import annotations

import numpy as np

from study.analysis import metrics as base

__all__ = ["LDL_METRICS", "LOWER_IS_BETTER", "chebyshev", "clark", "canberra", "ldl_metrics", "ldl_means"]


def _pair(h, p) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)


def chebyshev(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    h, p = _pair(h, p)
    return np.abs(h - p).max(-1)


def _ratio_terms(h: np.ndarray, p: np.ndarray, power: int) -> np.ndarray:
    h, p = _pair(h, p)
    total = h + p
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.abs(h - p) / np.where(total > 0, total, 1)) ** power, 0.0)


def clark(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.sqrt(_ratio_terms(h, p, 2).sum(-1))


def canberra(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _ratio_terms(h, p, 1).sum(-1)


LDL_METRICS = {
    "chebyshev": chebyshev,
    "clark": clark,
    "canberra": canberra,
    "kl": base.kl_divergence,
    "cosine": base.cosine,
    "intersection": base.intersection,
    "js": base.js_divergence,
}
LOWER_IS_BETTER = frozenset({"chebyshev", "clark", "canberra", "kl", "js"})


def ldl_metrics(h: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric per image: name -> (...,) array."""
    return {name: fn(h, p) for name, fn in LDL_METRICS.items()}


def ldl_means(h: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric averaged over images (rows); NaN for no images."""
    h, p = _pair(h, p)
    if h.shape[0] == 0:
        return dict.fromkeys(LDL_METRICS, float("nan"))
    return {name: float(np.mean(values)) for name, values in ldl_metrics(h, p).items()}
