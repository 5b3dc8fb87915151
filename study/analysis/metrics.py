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
- Spearman correlation of human and model normalised entropy over images: Pearson correlation of the
  average ranks (scipy.stats.spearmanr); NaN with fewer than 3 images or a constant side.
- AUROC of a score for a binary outcome: P(score of a positive > score of a negative), ties count 1/2,
  from the Mann-Whitney rank sum. Used for the uncertainty factor: how well a low lambda flags a flipped label.
- split-half ceiling: each image's votes are split at random into two halves (floor(n/2) and the rest);
  the same metrics are computed between the halves' distributions (first half as "human", second as
  "model"), and averaged over `splits` (default 100) seeded random splits, all at once as (S, N, K) arrays.
  Images with fewer than 2 votes are left out. This is how well one crowd of half the size predicts
  another, a ceiling no model can be expected to beat. Its KL is large when a half has no vote for a label
  the other half chose (the epsilon smoothing then dominates); read JS and intersection first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = [
    "KL_EPS", "distribution", "dirichlet_interval", "normalised_entropy", "js_divergence", "kl_divergence",
    "cosine", "intersection", "majority_mask", "top1_match", "expected_calibration_error", "confusion_matrix",
    "spearman", "ImageMetrics", "image_metrics", "Summary", "summary", "split_halves", "split_half_ceiling", "auroc",
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


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float | np.ndarray:
    """(..., N) confidences and 0/1 correctness -> (...,) ECE over `bins` equal-width confidence bins.

    sum_b |B_b|/N * |accuracy(B_b) - confidence(B_b)| = sum_b |sum_{i in B_b} (correct_i - conf_i)| / N.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = confidence.shape[-1]
    if n == 0:
        return _scalar(np.full(confidence.shape[:-1], np.nan))
    batch = int(np.prod(confidence.shape[:-1], dtype=np.int64))
    which = np.clip((confidence * bins).astype(np.int64), 0, bins - 1).reshape(batch, n)
    slot = (np.arange(batch)[:, None] * bins + which).ravel()
    gap = np.bincount(slot, weights=(correct - confidence).reshape(-1), minlength=batch * bins)
    return _scalar((np.abs(gap.reshape(batch, bins)).sum(-1) / n).reshape(confidence.shape[:-1]))


def _scalar(value: np.ndarray) -> float | np.ndarray:
    """A float for a single set of images, the array for a batch of them."""
    return float(value) if np.ndim(value) == 0 else value


def confusion_matrix(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(..., N, K) -> (..., K, K) counts: rows human majority, columns model argmax (tie rule: module docstring)."""
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    k = h.shape[-1]
    choice = p.argmax(-1)
    majority = majority_mask(h)
    picked_is_majority = np.take_along_axis(majority, choice[..., None], -1)[..., 0]
    row = np.where(picked_is_majority, choice, majority.argmax(-1))
    batch_shape = h.shape[:-2]
    batch = int(np.prod(batch_shape, dtype=np.int64))
    cell = (np.arange(batch).reshape(*batch_shape, 1) * k * k + row * k + choice) if batch_shape else row * k + choice
    return np.bincount(np.ravel(cell), minlength=batch * k * k).reshape(*batch_shape, k, k)


def spearman(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """(..., N) -> (...,) Spearman rank correlation: Pearson correlation of average ranks (as scipy's
    spearmanr). NaN with fewer than 3 pairs or when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape[-1] < 3:
        return _scalar(np.full(x.shape[:-1], np.nan))
    rx = stats.rankdata(x, axis=-1)
    ry = stats.rankdata(y, axis=-1)
    rx -= rx.mean(-1, keepdims=True)
    ry -= ry.mean(-1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    constant = (np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.where(constant, np.nan, (rx * ry).sum(-1) / np.where(constant, 1.0, denominator)))


@dataclass
class ImageMetrics:
    """Per-image agreement of one model with the humans; arrays of shape (..., N)."""

    js: np.ndarray
    kl: np.ndarray
    cosine: np.ndarray
    intersection: np.ndarray
    match: np.ndarray
    human_entropy: np.ndarray
    model_entropy: np.ndarray
    confidence: np.ndarray


def image_metrics(h: np.ndarray, p: np.ndarray) -> ImageMetrics:
    """h (..., N, K) human distributions, p (..., N, K) model distributions."""
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


SUMMARY_FIELDS = ("mean_js", "mean_kl", "mean_cosine", "mean_intersection", "top1_agreement", "entropy_spearman",
                  "ece")


def _batched_summary(h: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """h, p (..., N, K) with N >= 1 -> each summary field as a (...,) array and the confusion (..., K, K)."""
    m = image_metrics(h, p)
    return {
        "mean_js": m.js.mean(-1), "mean_kl": m.kl.mean(-1), "mean_cosine": m.cosine.mean(-1),
        "mean_intersection": m.intersection.mean(-1), "top1_agreement": m.match.mean(-1),
        "entropy_spearman": spearman(m.human_entropy, m.model_entropy),
        "ece": expected_calibration_error(m.confidence, m.match), "confusion": confusion_matrix(h, p),
    }


def summary(h: np.ndarray, p: np.ndarray) -> Summary:
    """Study-level agreement of model distributions p (N, K) with human distributions h (N, K)."""
    h, p = np.asarray(h, dtype=np.float64), np.asarray(p, dtype=np.float64)
    k = h.shape[-1]
    if len(h) == 0:
        return Summary(n_images=0, confusion=np.zeros((k, k), dtype=np.int64),
                       **{name: float("nan") for name in SUMMARY_FIELDS})
    values = _batched_summary(h, p)
    return Summary(n_images=len(h), confusion=values.pop("confusion"),
                   **{name: float(value) for name, value in values.items()})


def split_halves(counts: np.ndarray, splits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) vote counts -> two (S, N, K) count arrays: each image's votes dealt at random into a first half
    of floor(n/2) votes and a second half of the rest, independently for each of the S splits.

    Vectorised over splits and images: drawing floor(n/2) of an image's votes without replacement is a
    multivariate hypergeometric draw, done label by label from its marginals,
    x_k ~ Hypergeometric(good=c_k, bad=votes left after label k, draws still to make).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_images, k = counts.shape
    first = np.zeros((splits, n_images, k), dtype=np.int64)
    to_draw = np.broadcast_to(counts.sum(1) // 2, (splits, n_images)).copy()
    left = counts.sum(1)
    for label in range(k):
        left = left - counts[:, label]
        good = np.broadcast_to(counts[:, label], (splits, n_images))
        first[..., label] = rng.hypergeometric(good, np.broadcast_to(left, (splits, n_images)), to_draw)
        to_draw -= first[..., label]
    return first, counts[None] - first


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def split_half_ceiling(counts: np.ndarray, splits: int = 100, seed: int = 0) -> Summary:
    """The metrics between random halves of the same crowd, averaged over `splits` splits (module docstring).

    All splits are computed at once as (S, N, K) arrays; the confusion matrix is the mean over splits,
    rounded to whole images.
    """
    counts = np.asarray(counts)
    counts = counts[counts.sum(1) >= 2]
    k = counts.shape[1]
    if len(counts) == 0:
        return summary(np.zeros((0, k)), np.zeros((0, k)))
    first, second = split_halves(counts, splits, np.random.default_rng(seed))
    values = _batched_summary(distribution(first), distribution(second))
    confusion = np.rint(values.pop("confusion").mean(0)).astype(np.int64)
    return Summary(n_images=len(counts), confusion=confusion,
                   **{name: _nanmean(value) for name, value in values.items()})


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive`: (R+ - n+(n+ + 1)/2) / (n+ n-), with
    R+ the sum of the positives' average ranks. NaN unless both classes occur."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
