"""Adaptive vote allocation: more votes where people disagree, none wasted where they agree.

An image's *instability* is the expected Jensen-Shannon divergence (base 2) between its true share vector
and the posterior mean, under the Dirichlet posterior theta ~ Dirichlet(c + a) of its votes c:
E[JS(theta, E theta)]. It is what the distribution shown to a researcher could still move, it shrinks
with every vote, and it shrinks faster for faces people agree on (their posterior sits in a corner of the
simplex) than for ambiguous ones -- so a threshold on it spends votes where the distribution is still
unsettled. It is a stability rule, never a consensus rule: a face split 50/50 between two labels settles
too, once enough votes pin down the 50/50.

The prior a: the study's empirical-Bayes concentration (study.analysis.ceilings.empirical_prior), because
face distributions are sparse and the Jeffreys 1/2 would make every image look equally unsettled.

Expectations use 256 common random numbers (fixed uniforms turned into Gamma quantiles), so the value is a
deterministic function of the counts; counts are sorted first, so the same vote pattern in any label order
gives the same value, and it is computed once per distinct pattern.

Policy (a pure function of the counts):
- an image with fewer than `min_votes` is always open, and those come first, fewest votes first (balance);
- an image with `max_votes` is closed;
- in between, it is open while its instability is above `threshold`. Open images are ranked by what the
  next vote is expected to buy: the instability times 1 / (A + 1), A = n + K a (the posterior variance, and
  so the instability, falls by about that fraction per vote). That is the greedy optimum for the *mean*
  stability of the study (for errors s/n, equal marginal gains give n proportional to sqrt(s), where ranking
  by the instability alone would equalise the errors, n proportional to s, and spend more votes for the
  same mean: bench/allocation.py measures both). `rank="instability"` ranks least settled first instead.
Votes still in progress (served, unanswered assignments) count towards min/max and shrink the instability
as the posterior would: Var(theta_k) is proportional to 1/(A + 1) with A = n + K a, so pending votes p
scale it by (A + 1) / (A + p + 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from study.analysis import metrics
from study.analysis.ceilings import empirical_prior

__all__ = ["AllocationPolicy", "instability", "allocation_order", "settled"]

DRAWS = 256
_UNIFORMS_SEED = 20231


@dataclass(frozen=True)
class AllocationPolicy:
    min_votes: int = 3
    max_votes: int = 30
    threshold: float = 0.05
    prior: float | None = None  # None: fitted to the study's counts (empirical Bayes)
    rank: str = "gain"  # or "instability"

    def __post_init__(self):
        if self.min_votes < 1 or self.max_votes < self.min_votes:
            raise ValueError("need 1 <= min_votes <= max_votes")
        if not 0 < self.threshold < 1:
            raise ValueError("the stopping threshold is an expected JS divergence, in (0, 1)")
        if self.rank not in ("gain", "instability"):
            raise ValueError("rank is 'gain' or 'instability'")


def _uniforms(k: int) -> np.ndarray:
    rng = np.random.default_rng(_UNIFORMS_SEED)
    return rng.uniform(size=(DRAWS, k)).clip(1e-12, 1 - 1e-12)


def instability(counts: np.ndarray, prior: float) -> np.ndarray:
    """(N, K) counts -> (N,) E[JS(theta, E theta)] under Dirichlet(counts + prior) (module docstring)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape[0] == 0:
        return np.zeros(0)
    patterns, inverse = np.unique(-np.sort(-counts, axis=1), axis=0, return_inverse=True)
    alpha = patterns + prior
    gammas = special.gammaincinv(alpha[:, None, :], _uniforms(counts.shape[1])[None])  # (P, D, K)
    theta = gammas / gammas.sum(-1, keepdims=True)
    mean = alpha / alpha.sum(-1, keepdims=True)
    per_pattern = metrics.js_divergence(theta, mean[:, None, :]).mean(-1)
    return per_pattern[np.ravel(inverse)]


def _effective(counts: np.ndarray, pending: np.ndarray | None,
               prior: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> votes including pending ones, instability after them, and the concentration A after them."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(1)
    pending = np.zeros_like(n) if pending is None else np.asarray(pending, dtype=np.float64)
    concentration = n + counts.shape[1] * prior
    shrink = (concentration + 1) / (concentration + pending + 1)
    return n + pending, instability(counts, prior) * shrink, concentration + pending


def _prior(policy: AllocationPolicy, counts: np.ndarray) -> float:
    return policy.prior if policy.prior is not None else empirical_prior(counts)


def settled(counts: np.ndarray, policy: AllocationPolicy, pending: np.ndarray | None = None) -> np.ndarray:
    """(N,) True where an image needs no more votes (module docstring)."""
    n, unstable, _ = _effective(counts, pending, _prior(policy, counts))
    return (n >= policy.max_votes) | ((n >= policy.min_votes) & (unstable <= policy.threshold))


def allocation_order(counts: np.ndarray, policy: AllocationPolicy, pending: np.ndarray | None = None,
                     tie_break: np.ndarray | None = None) -> np.ndarray:
    """Indices of the images that still need votes, least settled first (module docstring).

    tie_break: (N,) numbers that order images equal on every criterion (e.g. a per-participant hash).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n, unstable, concentration = _effective(counts, pending, _prior(policy, counts))
    below_min = n < policy.min_votes
    score = unstable / (concentration + 1) if policy.rank == "gain" else unstable
    open_ = below_min | ((n < policy.max_votes) & (unstable > policy.threshold))
    tie = np.zeros(len(n)) if tie_break is None else np.asarray(tie_break, dtype=np.float64)
    # lexsort: last key first. Below-min images first by fewest votes; then the rest by score, highest first.
    order = np.lexsort((tie, np.where(below_min, 0.0, -score), np.where(below_min, n, 0.0), ~below_min))
    return order[open_[order]]
