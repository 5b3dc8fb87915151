"""Ceilings against simulations where each face's true distribution is known."""
import numpy as np
import pytest

from ml.data.synthetic import sample_mixture
from study.analysis import ceilings, metrics

K = 7


def synthetic_truth(n_images: int, seed: int) -> np.ndarray:
    """True distributions of synthetic faces (the generator's own mixture, ambiguity uniform in [0, 1])."""
    rng = np.random.default_rng(seed)
    return np.array([sample_mixture(rng, K, rng.uniform(), int(rng.integers(K))) for _ in range(n_images)])


def true_figures(truth: np.ndarray, n: int, seed: int, draws: int = 60) -> tuple[dict, dict]:
    """Exact-by-simulation: the truth against n votes, and a crowd of n against another crowd of n."""
    rng = np.random.default_rng(seed)
    shape = (draws, *truth.shape)
    first = rng.multinomial(n, np.broadcast_to(truth, shape))
    second = rng.multinomial(n, np.broadcast_to(truth, shape))
    floor = metrics._batched_summary(metrics.distribution(first), np.broadcast_to(truth, shape))
    crowd = metrics._batched_summary(metrics.distribution(first), metrics.distribution(second))
    return ({k: metrics._nanmean(v) for k, v in floor.items() if k != "confusion"},
            {k: metrics._nanmean(v) for k, v in crowd.items() if k != "confusion"})


@pytest.fixture(scope="module")
def study_with_truth():
    truth = synthetic_truth(300, seed=3)
    counts = np.random.default_rng(4).multinomial(10, truth)
    return truth, counts, *true_figures(truth, 10, seed=5)


@pytest.mark.parametrize("field,tolerance", [("mean_js", 0.12), ("mean_intersection", 0.05),
                                             ("top1_agreement", 0.05), ("mean_cosine", 0.03)])
def test_noise_floor_matches_truth_scored_against_n_votes(study_with_truth, field, tolerance):
    _, counts, floor, _ = study_with_truth
    estimate = ceilings.noise_floor(counts, resamples=60, seed=0)
    assert estimate[field] == pytest.approx(floor[field], rel=tolerance)


@pytest.mark.parametrize("field,tolerance", [("mean_js", 0.08), ("mean_intersection", 0.03),
                                             ("top1_agreement", 0.04), ("mean_cosine", 0.03)])
def test_full_crowd_correction_matches_two_full_crowds_where_split_half_does_not(study_with_truth, field,
                                                                                tolerance):
    _, counts, _, crowd = study_with_truth
    corrected = ceilings.full_crowd(counts, splits=60, seed=0)
    raw = ceilings.split_half(counts, splits=60, seed=0)
    assert corrected[field] == pytest.approx(crowd[field], rel=tolerance)
    assert abs(raw[field] - crowd[field]) > 2 * abs(corrected[field] - crowd[field])


def test_noise_floor_beats_split_half_and_full_crowd_sits_between(study_with_truth):
    _, counts, _, _ = study_with_truth
    result = ceilings.ceilings(counts, splits=40, resamples=40)
    assert result["headline"] == "noise_floor"
    js = [result[name]["mean_js"] for name in ("noise_floor", "full_crowd", "split_half")]
    assert js == sorted(js)
    assert result["noise_floor"]["top1_agreement"] > result["split_half"]["top1_agreement"]


def test_three_votes_no_longer_read_as_zero_agreement():
    """The issue's case: with 3 votes per image, halves of 1 and 2 votes understate a crowd badly."""
    truth = synthetic_truth(200, seed=8)
    counts = np.random.default_rng(9).multinomial(3, truth)
    floor = ceilings.noise_floor(counts, resamples=40)
    half = ceilings.split_half(counts, splits=40)
    assert floor["top1_agreement"] > half["top1_agreement"] + 0.1


def test_empirical_prior_finds_sparse_truth_and_defaults_without_votes():
    truth = np.random.default_rng(0).dirichlet(np.full(K, 0.2), size=400)
    counts = np.random.default_rng(1).multinomial(20, truth)
    assert ceilings.empirical_prior(counts) == pytest.approx(0.2, rel=0.25)
    assert ceilings.empirical_prior(np.zeros((3, K))) == 0.5


def test_monte_carlo_standard_error_matches_spread_of_repeated_estimates(study_with_truth):
    _, counts, _, _ = study_with_truth
    repeats = [ceilings.split_half(counts, splits=20, seed=s)["mean_js"] for s in range(12)]
    reported = ceilings.split_half(counts, splits=20, seed=0)["se"]["mean_js"]
    assert np.std(repeats, ddof=1) == pytest.approx(reported, rel=0.6)
    assert ceilings.noise_floor(counts, resamples=20)["se"]["top1_agreement"] > 0


def test_split_half_equals_the_existing_ceiling():
    counts = np.random.default_rng(2).multinomial(6, synthetic_truth(50, seed=2))
    old = metrics.split_half_ceiling(counts, splits=30, seed=7)
    new = ceilings.split_half(counts, splits=30, seed=7)
    assert new["mean_js"] == pytest.approx(old.mean_js, rel=1e-12)
    assert new["top1_agreement"] == pytest.approx(old.top1_agreement, rel=1e-12)


def test_images_without_enough_votes_are_left_out_and_empty_studies_give_nan():
    counts = np.array([[1, 0, 0], [0, 0, 0], [2, 1, 0]])
    assert ceilings.noise_floor(counts, resamples=5)["n_images"] == 2
    assert ceilings.split_half(counts, splits=5)["n_images"] == 1
    empty = ceilings.ceilings(np.zeros((0, 3), dtype=int), splits=5, resamples=5)
    assert np.isnan(empty["noise_floor"]["mean_js"]) and empty["full_crowd"]["n_images"] == 0


def test_fraction_of_ceiling_orients_each_metric():
    ceiling = {"mean_js": 0.05, "top1_agreement": 0.8, "mean_kl": None, "mean_cosine": 0.0}
    model = {"mean_js": 0.1, "top1_agreement": 0.6, "mean_kl": 0.3, "mean_cosine": 0.5}
    fraction = ceilings.fraction_of_ceiling(model, ceiling)
    assert fraction["mean_js"] == pytest.approx(0.5)
    assert fraction["top1_agreement"] == pytest.approx(0.75)
    assert fraction["mean_kl"] is None
    assert np.isnan(fraction["mean_cosine"])
