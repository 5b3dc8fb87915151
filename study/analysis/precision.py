"""Numbers that must not depend on label order or lose digits on the way to a CSV.

- Entropy: floating-point addition is not associative, so summing -p log p in label order gives results
  that differ in the last bit for the same vote pattern in another order (two faces with votes (3, 1, 0)
  and (1, 0, 3) then count as a non-tie in a rank correlation). Summing the terms of the *sorted*
  distribution makes equal multisets of shares give bit-equal entropies.
- CSV floats: a float32 needs 9 significant digits to round-trip (IEEE 754: ceil(24 log10 2) + 1 = 9),
  so `format_float32` writes '%.9g'; 6 decimals lost up to 5e-7 per share, enough to move a KL
  recomputed from the file in its 5th decimal.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["sorted_normalised_entropy", "format_float32", "FLOAT32_DIGITS"]

FLOAT32_DIGITS = 9


def sorted_normalised_entropy(p: np.ndarray) -> np.ndarray:
    """(..., K) distributions -> (...,) entropy / log K, summed over the sorted shares (module docstring)."""
    p = np.sort(np.asarray(p, dtype=np.float64), axis=-1)
    k = p.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1)), 0.0)
    return terms.sum(-1) / np.log(k)


def format_float32(value: float) -> str:
    """Shortest-safe text for a float32 output: 9 significant digits; '' for None or NaN."""
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    return f"{value:.{FLOAT32_DIGITS}g}"
