"""study.analysis.metrics against scipy and hand-computed cases."""
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import beta, entropy, spearmanr

from study.analysis import metrics


def test_distribution_and_entropy_by_hand():
    h = metrics.distribution([[2, 2, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(h[0], [0.5, 0.5, 0, 0])
    assert np.isnan(h[1]).all()
    assert metrics.normalised_entropy([0.5, 0.5, 0, 0]) == pytest.approx(math.log(2) / math.log(4))
    assert metrics.normalised_entropy([1, 0, 0]) == 0.0


def test_js_kl_cosine_against_scipy():
    rng = np.random.default_rng(0)
    h, p = rng.dirichlet(np.ones(7), 20), rng.dirichlet(np.ones(7), 20)
    np.testing.assert_allclose(metrics.js_divergence(h, p), jensenshannon(h, p, base=2, axis=1) ** 2, atol=1e-12)
    np.testing.assert_allclose(metrics.kl_divergence(h, p, eps=0), entropy(h, p, axis=1), atol=1e-12)
    np.testing.assert_allclose(metrics.cosine(h, p), [hi @ pi / np.linalg.norm(hi) / np.linalg.norm(pi)
                                                      for hi, pi in zip(h, p, strict=False)])
    assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert metrics.intersection(np.array([0.5, 0.5, 0]), np.array([0.2, 0.3, 0.5])) == pytest.approx(0.5)


def test_kl_smoothing_keeps_zero_model_mass_finite():
    value = metrics.kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert np.isfinite(value) and value > 5


def test_interval_is_the_jeffreys_beta_marginal():
    low, high = metrics.dirichlet_interval(np.array([6, 3, 1]))
    assert low[0] == pytest.approx(beta.ppf(0.025, 6.5, 4 + 1.0))
    assert high[2] == pytest.approx(beta.ppf(0.975, 1.5, 9 + 1.0))
    assert (low < np.array([0.6, 0.3, 0.1])).all() and (high > np.array([0.6, 0.3, 0.1])).all()


def test_top1_match_counts_ties_as_majority():
    h = np.array([[0.4, 0.4, 0.2], [0.6, 0.2, 0.2]])
    assert metrics.top1_match(h, np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])).tolist() == [True, False]


def test_confusion_matrix_and_ece_by_hand():
    h = np.array([[3, 0, 0], [0, 3, 0], [1, 1, 0]], dtype=float)
    p = np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.2, 0.7, 0.1]])
    matrix = metrics.confusion_matrix(h, p)
    assert matrix.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    # confidences 0.9 (match), 0.6 (miss), 0.7 (match): bins 9, 6, 7 -> (0.1 + 0.6 + 0.3) / 3
    ece = metrics.expected_calibration_error(np.array([0.9, 0.6, 0.7]), np.array([1, 0, 1]))
    assert ece == pytest.approx((0.1 + 0.6 + 0.3) / 3)


def test_summary_spearman_matches_scipy():
    rng = np.random.default_rng(1)
    counts = rng.multinomial(20, rng.dirichlet(np.ones(5), 30))
    h, p = metrics.distribution(counts), rng.dirichlet(np.ones(5), 30)
    result = metrics.summary(h, p)
    expected = spearmanr(metrics.normalised_entropy(h), metrics.normalised_entropy(p)).statistic
    assert result.entropy_spearman == pytest.approx(expected)
    assert result.confusion.sum() == 30 and 0 <= result.top1_agreement <= 1


def test_split_half_ceiling_is_perfect_for_unanimous_crowds_and_worse_for_split_ones():
    unanimous = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10]])
    ceiling = metrics.split_half_ceiling(unanimous, splits=100)
    assert ceiling.mean_js == pytest.approx(0.0) and ceiling.top1_agreement == 1.0
    divided = np.array([[5, 5, 0], [4, 3, 3], [3, 3, 4]])
    noisy = metrics.split_half_ceiling(divided, splits=100, seed=3)
    assert noisy.mean_js > 0.05 and noisy.top1_agreement < 1.0
    assert metrics.split_half_ceiling(divided, splits=100, seed=3).mean_js == noisy.mean_js  # seeded


def test_split_halves_keep_every_vote_and_deal_half_of_them():
    counts = np.array([[3, 2, 1], [0, 7, 0], [1, 0, 0]])
    first, second = metrics.split_halves(counts, 50, np.random.default_rng(0))
    np.testing.assert_array_equal(first + second, np.broadcast_to(counts, first.shape))
    np.testing.assert_array_equal(first.sum(-1), np.broadcast_to([3, 3, 0], (50, 3)))
    assert (first >= 0).all() and (second >= 0).all()


def test_split_halves_draw_without_replacement_like_a_shuffle():
    """Each label's share of the first half has the hypergeometric mean c_k * floor(n/2) / n and varies."""
    counts = np.array([[6, 3, 1, 0]])
    first, _ = metrics.split_halves(counts, 20_000, np.random.default_rng(1))
    np.testing.assert_allclose(first[:, 0].mean(0), counts[0] * 5 / 10, atol=0.03)
    # hypergeometric variance of label 0: n_draw * (c/N) * (1 - c/N) * (N - n_draw) / (N - 1)
    assert first[:, 0, 0].var() == pytest.approx(5 * 0.6 * 0.4 * 5 / 9, rel=0.05)


def test_batched_summary_equals_one_summary_per_split():
    rng = np.random.default_rng(2)
    h = rng.dirichlet(np.ones(5), (4, 25))
    p = rng.dirichlet(np.ones(5), (4, 25))
    batched = metrics._batched_summary(h, p)
    for s in range(4):
        single = metrics.summary(h[s], p[s])
        for name in metrics.SUMMARY_FIELDS:
            assert batched[name][s] == pytest.approx(getattr(single, name))
        np.testing.assert_array_equal(batched["confusion"][s], single.confusion)
        assert single.entropy_spearman == pytest.approx(
            spearmanr(metrics.normalised_entropy(h[s]), metrics.normalised_entropy(p[s])).statistic)


def test_spearman_handles_ties_like_scipy_and_constant_input_as_nan():
    x, y = np.array([0.1, 0.1, 0.3, 0.5, 0.5, 0.9]), np.array([2.0, 1.0, 1.0, 3.0, 5.0, 4.0])
    assert metrics.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert math.isnan(metrics.spearman(x, np.ones(6))) and math.isnan(metrics.spearman(x[:2], y[:2]))


def test_ceiling_averages_at_least_a_hundred_splits_quickly():
    import time

    rng = np.random.default_rng(3)
    counts = rng.multinomial(40, rng.dirichlet(np.ones(7) * 0.5, 1000))
    started = time.perf_counter()
    ceiling = metrics.split_half_ceiling(counts, splits=100, seed=0)
    assert time.perf_counter() - started < 5  # vectorised: well under a second on an idle core
    assert ceiling.n_images == 1000 and 0 < ceiling.mean_js < 1 and ceiling.confusion.sum() == pytest.approx(1000, abs=7)


def test_auroc_equals_the_pairwise_probability_with_half_ties():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    positive = rng.random(60) < 0.3
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in scores[positive] for b in scores[~positive]]
    assert metrics.auroc(scores, positive) == pytest.approx(np.mean(pairs))
    assert metrics.auroc([0.1, 0.9], [False, True]) == 1.0 and math.isnan(metrics.auroc([1, 2], [True, True]))
