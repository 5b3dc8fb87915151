"""Agreement between human vote distributions and model distributions (pure numpy/scipy).

Arrays: H (N, K) human vote counts per image and label; P (N, K) model probabilities, rows sum to 1.
Every per-image function is vectorised over the leading axes.

Formulas (natural log unless said otherwise):
- human distribution h = counts / n.
- 95% interval of each label's share: the Beta marginal of a Dirichlet posterior with the Jeffreys
  prior, Dirichlet(counts + 1/2): p_k ~ Beta(c_k + 1/2, n - c_k + (K - 1)/2); the 2.5% and 97.5% quantiles.
- normalised entropy: H(p) / log K, in [0, 1].
- Jensen-Shannon divergence, base 2, in [0, 1]: JS(h, p) = 1/2 KL2(h || m) + 1/2 KL2(p || m), m = (h + p)/2.
- KL(h || p) with smoothing: p' = (p + eps) / (1 + K eps), eps = 1e-6, so a model that gives 0 to a label
  people chose costs a large but finite amount; terms with h_k = 0 are 0.
- cosine similarity h.p / (|h| |p|); intersection sum_k min(h_k, p_k), in [0, 1].
- top-1 match: the model's argmax is one of the human majority labels (ties in the vote count all count
  as majority labels), so a tie never penalises a model that picked one of the tied labels.
- ECE against the human majority: 10 equal-width bins of model confidence max_k p_k;
  ECE = sum_b |B_b|/N * |match rate in b - mean confidence in b|.
- confusion matrix: rows = human majority label, columns = model argmax; a tied majority is attributed to
  the model's label when it is among the tied ones, else to the first tied label in label order.
- split-half ceiling: each image's votes are split at random into two halves (floor(n/2) and the rest);
  the same metrics are computed between the halves' distributions (first half as "human", second as
  "model"), and averaged over `splits` random splits. Images with fewer than 2 votes are left out. This is
  how well one crowd of half the size predicts another, a ceiling no model can be expected to beat.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = [
    "KL_EPS", "distribution", "dirichlet_interval", "normalised_entropy", "js_divergence", "kl_divergence",
    "cosine", "intersection", "majority_mask", "top1_match", "expected_calibration_error", "confusion_matrix",
    "spearman", "ImageMetrics", "image_metrics", "summary", "split_half_ceiling",
]

KL_EPS = 1e-6


def distribution(counts: np.ndarray) -> np.ndarray:
    """(..., K) counts -> shares; rows with no votes become NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / np.where(total > 0, total, 1), np.nan)


def dirichlet_interval(counts: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(..., K) counts -> (low, high) of each share, Jeffreys-prior Dirichlet posterior's Beta marginals."""
    counts = np.asarray(counts, dtype=np.float64)
    k = counts.shape[-1]
    a = counts + 0.5
    b = counts.sum(-1, keepdims=True) - counts + 0.5 * (k - 1)
    tail = (1 - level) / 2
    return stats.beta.ppf(tail, a, b), stats.beta.ppf(1 - tail, a, b)


def normalised_entropy(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    k = p.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1)), 0.0)
    return terms.sum(-1) / np.log(k)


def _kl(p: np.ndarray, q: np.ndarray, log) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (log(np.where(p > 0, p, 1)) - log(np.where(q > 0, q, 1))), 0.0).sum(-1)


def js_divergence(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Base-2 Jensen-Shannon divergence in [0, 1] (scipy's jensenshannon(base=2) squared)."""
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    m = (h + p) / 2
    return np.clip(0.5 * _kl(h, m, np.log2) + 0.5 * _kl(p, m, np.log2), 0.0, 1.0)


def kl_divergence(h: np.ndarray, p: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """KL(h || p') in nats with p' = (p + eps) / (1 + K eps)."""
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    smoothed = (p + eps) / (1 + p.shape[-1] * eps)
    return _kl(h, smoothed, np.log)


def cosine(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    norm = np.linalg.norm(h, axis=-1) * np.linalg.norm(p, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (h * p).sum(-1) / norm


def intersection(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.minimum(h, p).sum(-1)


def majority_mask(h: np.ndarray) -> np.ndarray:
    """(..., K) bool: the labels tied for the most votes."""
    h = np.asarray(h, dtype=np.float64)
    return np.isclose(h, h.max(-1, keepdims=True)) & (h > 0)


def top1_match(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """True where the model's argmax is among the human majority labels."""
    choice = np.asarray(p).argmax(-1)
    return np.take_along_axis(majority_mask(h), choice[..., None], -1)[..., 0]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return float("nan")
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def confusion_matrix(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(K, K) counts: rows human majority, columns model argmax (tie rule in the module docstring)."""
    h, p = np.asarray(h), np.asarray(p)
    k = h.shape[-1]
    choice = p.argmax(-1)
    majority = majority_mask(h)
    first = majority.argmax(-1)
    row = np.where(majority[np.arange(len(h)), choice], choice, first)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (row, choice), 1)
    return matrix


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


@dataclass
class ImageMetrics:
    """Per-image agreement of one model with the humans; arrays of shape (N,)."""

    js: np.ndarray
    kl: np.ndarray
    cosine: np.ndarray
    intersection: np.ndarray
    match: np.ndarray
    human_entropy: np.ndarray
    model_entropy: np.ndarray
    confidence: np.ndarray


def image_metrics(h: np.ndarray, p: np.ndarray) -> ImageMetrics:
    """h (N, K) human distributions, p (N, K) model distributions."""
    return ImageMetrics(js=js_divergence(h, p), kl=kl_divergence(h, p), cosine=cosine(h, p),
                        intersection=intersection(h, p), match=top1_match(h, p),
                        human_entropy=normalised_entropy(h), model_entropy=normalised_entropy(p),
                        confidence=np.asarray(p).max(-1))


@dataclass
class Summary:
    """Study-level agreement of one distribution source (a model, or the split-half ceiling)."""

    n_images: int
    mean_js: float
    mean_kl: float
    mean_cosine: float
    mean_intersection: float
    top1_agreement: float
    entropy_spearman: float
    ece: float
    confusion: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def summary(h: np.ndarray, p: np.ndarray) -> Summary:
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    m = image_metrics(h, p)
    nan = float("nan")
    return Summary(
        n_images=len(h),
        mean_js=float(m.js.mean()) if len(h) else nan, mean_kl=float(m.kl.mean()) if len(h) else nan,
        mean_cosine=float(m.cosine.mean()) if len(h) else nan,
        mean_intersection=float(m.intersection.mean()) if len(h) else nan,
        top1_agreement=float(m.match.mean()) if len(h) else nan,
        entropy_spearman=spearman(m.human_entropy, m.model_entropy),
        ece=expected_calibration_error(m.confidence, m.match),
        confusion=confusion_matrix(h, p) if len(h) else np.zeros((h.shape[-1], h.shape[-1]), dtype=np.int64),
    )


def _half_counts(counts: np.ndarray, splits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) counts -> two (S, N, K) count arrays, each image's votes split at random into halves."""
    n_images, k = counts.shape
    first = np.zeros((splits, n_images, k))
    for i, row in enumerate(counts.astype(np.int64)):
        votes = np.repeat(np.arange(k), row)
        shuffled = rng.permuted(np.tile(votes, (splits, 1)), axis=1)[:, : len(votes) // 2]
        first[:, i] = np.apply_along_axis(np.bincount, 1, shuffled, minlength=k) if shuffled.size else 0
    return first, counts[None].astype(np.float64) - first


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def split_half_ceiling(counts: np.ndarray, splits: int = 100, seed: int = 0) -> Summary:
    """The metrics between random halves of the same crowd, averaged over `splits` splits."""
    counts = np.asarray(counts)
    counts = counts[counts.sum(1) >= 2]
    k = counts.shape[1]
    if len(counts) == 0:
        return summary(np.zeros((0, k)), np.zeros((0, k)))
    first, second = _half_counts(counts, splits, np.random.default_rng(seed))
    per_split = [summary(distribution(first[s]), distribution(second[s])) for s in range(splits)]
    fields = ("mean_js", "mean_kl", "mean_cosine", "mean_intersection", "top1_agreement", "entropy_spearman", "ece")
    averaged = {name: _nanmean([getattr(s, name) for s in per_split]) for name in fields}
    confusion = np.rint(np.mean([s.confusion for s in per_split], axis=0)).astype(np.int64)
    return Summary(n_images=len(counts), confusion=confusion, **averaged)
