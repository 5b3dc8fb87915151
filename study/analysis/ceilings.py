"""Human ceilings that are fair to models, each with its Monte-Carlo standard error.

A model is scored against each image's crowd of n votes, and even a model that knew each face's *true*
distribution would not score perfectly against n sampled votes. Three reference figures, per summary metric:

1. **Noise floor at the image's own vote count** (the headline). What the true distribution itself would
   score against n votes: for each of R resamples, draw a plausible truth theta_i ~ Dirichlet(c_i + a) (the
   posterior of image i's shares), draw n_i votes ~ Multinomial(n_i, theta_i), and score theta as the
   "model" against those votes as the "humans", with exactly the metrics models get. It answers the
   question a model's score raises -- how close could a perfect model have come with *these* vote counts --
   so it is the headline and the denominator of each model's fraction of ceiling.
   The prior a is fitted to the study (empirical Bayes: the symmetric Dirichlet-multinomial concentration
   that maximises the marginal likelihood of all images' counts). Face distributions are sparse, and the
   Jeffreys a = 1/2 spreads too much mass on labels nobody chose: on synthetic faces with 10 votes it
   overstated the floor's JS by 15%, the fitted a (about 0.25) by under 10% the other way (tests).
2. **Split-half** (kept as before): one half of the crowd (floor(n/2) votes) against the other half.
   It understates a full crowd: two half-size crowds are each noisier than the crowd the model faces.
3. **Split-half corrected to the full crowd size**: the expected agreement of this crowd with a second,
   independent crowd of the same size n. A closed-form law exists only for quadratic divergences
   (E[D(crowd_a, crowd_b)] proportional to 1/a + 1/b, so x 1/2 for even n), and JS, top-1 and intersection
   are far from quadratic at a few votes (that law misses the true full-crowd JS by 37% at n = 3 and 19% at
   n = 10). So the correction factor is computed, not assumed: under the same fitted posterior, simulate a
   pair of half crowds and a pair of full crowds per image and multiply the observed split-half value by
   the ratio full / half of their means. The observed halves carry the data, the model only the change of
   size (on synthetic faces: within 5% of the truth at n = 10 and 40 for JS, KL, cosine, intersection, top-1).
   The entropy rank correlation is a split-half reliability and gets Spearman-Brown proper, 2 rho / (1 + rho).

Standard errors: the spread of the study-level value over the R resamples or S splits, divided by
sqrt(R) or sqrt(S): the Monte-Carlo error of the figure shown, not the sampling error of the crowd (for the
full-crowd figure, that of its split-half part times the ratio; the ratio's own error is not included).

`fraction_of_ceiling`: for higher-is-better metrics model / ceiling, for lower-is-better ones
ceiling / model, so 1.0 means "as good as the truth itself would look" and a figure above 1 is chance.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from study.analysis import metrics

__all__ = ["SUMMARY_FIELDS", "HIGHER_IS_BETTER", "empirical_prior", "dirichlet_posterior_draws", "noise_floor",
           "split_half", "full_crowd", "ceilings", "fraction_of_ceiling"]

SUMMARY_FIELDS = metrics.SUMMARY_FIELDS
HIGHER_IS_BETTER = frozenset({"mean_cosine", "mean_intersection", "top1_agreement", "entropy_spearman"})


def empirical_prior(counts: np.ndarray) -> float:
    """The symmetric Dirichlet concentration a maximising sum_i log DirichletMultinomial(c_i | a), searched in
    [0.01, 10]; 0.5 (Jeffreys) when there are no votes to fit."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts.sum(1) > 0]
    if len(counts) == 0:
        return 0.5
    k, n = counts.shape[1], counts.sum(1)

    def negative_log_likelihood(log_a: float) -> float:
        a = np.exp(log_a)
        return -float((special.gammaln(k * a) - special.gammaln(n + k * a)
                       + (special.gammaln(counts + a) - special.gammaln(a)).sum(1)).sum())

    fit = optimize.minimize_scalar(negative_log_likelihood, bounds=(np.log(0.01), np.log(10.0)), method="bounded")
    return float(np.exp(fit.x))


def dirichlet_posterior_draws(counts: np.ndarray, draws: int, rng: np.random.Generator, prior: float) -> np.ndarray:
    """(N, K) counts -> (draws, N, K) samples of Dirichlet(counts + prior), via normalised gammas."""
    alpha = np.asarray(counts, dtype=np.float64) + prior
    gammas = rng.standard_gamma(np.broadcast_to(alpha, (draws, *alpha.shape)))
    return gammas / gammas.sum(-1, keepdims=True)


def _collapse(name: str, n_images: int, per_draw: dict[str, np.ndarray], **extra) -> dict:
    """Per-draw study-level values -> mean and Monte-Carlo s.e. per field (None for a missing field)."""
    confusion = per_draw.pop("confusion", None)
    values, se = {}, {}
    for field in SUMMARY_FIELDS:
        draws = per_draw.get(field)
        if draws is None:
            values[field], se[field] = None, None
            continue
        draws = np.asarray(draws, dtype=np.float64)
        finite = draws[np.isfinite(draws)]
        values[field] = float(finite.mean()) if finite.size else float("nan")
        se[field] = float(finite.std(ddof=1) / np.sqrt(finite.size)) if finite.size > 1 else float("nan")
    result = {"name": name, "n_images": n_images, **values, "se": se,
              "draws": len(next(iter(per_draw.values()))), **extra}
    if confusion is not None:
        result["confusion"] = np.rint(np.asarray(confusion).mean(0)).astype(np.int64).tolist()
    return result


def _empty(name: str, k: int) -> dict:
    return {"name": name, "n_images": 0, **dict.fromkeys(SUMMARY_FIELDS, float("nan")),
            "se": dict.fromkeys(SUMMARY_FIELDS, float("nan")), "draws": 0,
            "confusion": np.zeros((k, k), dtype=np.int64).tolist()}


def _resolve_prior(counts: np.ndarray, prior: float | str) -> float:
    return empirical_prior(counts) if prior == "empirical" else float(prior)


def noise_floor(counts: np.ndarray, resamples: int = 100, seed: int = 0, prior: float | str = "empirical") -> dict:
    """What the true distribution would score against each image's own n votes (module docstring, 1)."""
    counts = np.asarray(counts, dtype=np.int64)
    counts = counts[counts.sum(1) >= 1]
    name = "Human noise floor (truth vs n votes)"
    if len(counts) == 0:
        return _empty(name, np.shape(counts)[1])
    a = _resolve_prior(counts, prior)
    rng = np.random.default_rng(seed)
    truth = dirichlet_posterior_draws(counts, resamples, rng, a)
    votes = rng.multinomial(counts.sum(1), truth)
    return _collapse(name, len(counts), metrics._batched_summary(metrics.distribution(votes), truth), prior=a)


def _halves(counts: np.ndarray, splits: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.asarray(counts, dtype=np.int64)
    counts = counts[counts.sum(1) >= 2]
    first, second = metrics.split_halves(counts, splits, np.random.default_rng(seed))
    return counts, metrics.distribution(first), metrics.distribution(second)


def split_half(counts: np.ndarray, splits: int = 100, seed: int = 0) -> dict:
    """Today's split-half ceiling (the same splits as study metrics) with its Monte-Carlo s.e."""
    name = "Human split-half"
    counts, first, second = _halves(counts, splits, seed)
    if len(counts) == 0:
        return _empty(name, np.shape(counts)[1])
    return _collapse(name, len(counts), metrics._batched_summary(first, second))


def _size_ratio(counts: np.ndarray, resamples: int, seed: int, prior: float) -> dict[str, float]:
    """Per field: mean over posterior crowds of (full vs full) / (half vs half) (module docstring, 3)."""
    rng = np.random.default_rng(seed + 1)
    truth = dirichlet_posterior_draws(counts, resamples, rng, prior)
    n = counts.sum(1)
    half = n // 2

    def crowd(size: np.ndarray) -> np.ndarray:
        return metrics.distribution(rng.multinomial(size, truth))

    full_pair = metrics._batched_summary(crowd(n), crowd(n))
    half_pair = metrics._batched_summary(crowd(half), crowd(n - half))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {field: metrics._nanmean(full_pair[field]) / metrics._nanmean(half_pair[field])
                for field in SUMMARY_FIELDS}


def full_crowd(counts: np.ndarray, splits: int = 100, seed: int = 0, prior: float | str = "empirical") -> dict:
    """Split-half corrected to two crowds of the full size n (module docstring, 3)."""
    name = "Human full-crowd (split-half corrected)"
    counts, first, second = _halves(counts, splits, seed)
    if len(counts) == 0:
        return _empty(name, np.shape(counts)[1])
    a = _resolve_prior(counts, prior)
    observed = metrics._batched_summary(first, second)
    observed.pop("confusion")
    ratio = _size_ratio(counts, min(splits, 50), seed, a)  # a ratio of two means: 50 crowds pin it to ~1%
    per_draw = {field: observed[field] * ratio[field] for field in SUMMARY_FIELDS if field != "entropy_spearman"}
    rho = observed["entropy_spearman"]
    per_draw["entropy_spearman"] = 2 * rho / (1 + rho)
    return _collapse(name, len(counts), per_draw, prior=a)


def ceilings(counts: np.ndarray, *, splits: int = 100, resamples: int = 100, seed: int = 0) -> dict:
    """All three reference figures; `headline` names the one model fractions use (the noise floor)."""
    counts = np.asarray(counts, dtype=np.int64)
    a = empirical_prior(counts)
    return {"headline": "noise_floor",
            "noise_floor": noise_floor(counts, resamples=resamples, seed=seed, prior=a),
            "split_half": split_half(counts, splits=splits, seed=seed),
            "full_crowd": full_crowd(counts, splits=splits, seed=seed, prior=a)}


def fraction_of_ceiling(model: dict, ceiling: dict) -> dict[str, float | None]:
    """Each summary field of a model as a fraction of the ceiling's (module docstring); None where either
    has no value, NaN where the division is undefined."""
    out: dict[str, float | None] = {}
    for field in SUMMARY_FIELDS:
        model_value, ceiling_value = model.get(field), ceiling.get(field)
        if ceiling_value is None or model_value is None:
            out[field] = None
            continue
        top, bottom = (model_value, ceiling_value) if field in HIGHER_IS_BETTER else (ceiling_value, model_value)
        out[field] = float(top) / float(bottom) if bottom else float("nan")
    return out
