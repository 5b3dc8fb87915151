"""study.metrics against scipy and hand-computed cases."""
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import beta, entropy, spearmanr

from study import metrics


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
                                                      for hi, pi in zip(h, p)])
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


def test_split_half_keeps_every_vote():
    counts = np.array([[3, 2, 1], [0, 7, 0]])
    first, second = metrics._half_counts(counts, 50, np.random.default_rng(0))
    np.testing.assert_array_equal(first + second, np.broadcast_to(counts, first.shape))
    np.testing.assert_array_equal(first.sum(-1), np.broadcast_to([3, 3], (50, 2)))
