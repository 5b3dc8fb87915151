import itertools

import numpy as np
import pytest

from study.analysis import metrics
from study.analysis.precision import format_float32, sorted_normalised_entropy


def test_equal_vote_patterns_give_bit_equal_entropies_in_any_label_order():
    counts = np.array([7, 3, 1, 1, 0, 2, 5], dtype=float)
    entropies = {sorted_normalised_entropy(np.array(order) / counts.sum()).tobytes()
                 for order in itertools.permutations(counts)}
    assert len(entropies) == 1


def _label_order_sum(p: np.ndarray) -> float:
    """The old computation: terms summed in label order."""
    return float(np.where(p > 0, -p * np.log(np.where(p > 0, p, 1)), 0.0).sum() / np.log(len(p)))


def test_study_entropy_is_order_free_where_the_label_order_sum_is_not():
    """The bug this guards against: the plain sum differs in the last bit for some orders."""
    rng = np.random.default_rng(0)
    differs = 0
    for _ in range(200):
        counts = rng.integers(0, 9, size=7).astype(float)
        counts[0] += 1
        p = counts / counts.sum()
        differs += _label_order_sum(p) != _label_order_sum(p[::-1])
        assert metrics.normalised_entropy(p) == metrics.normalised_entropy(p[::-1])
        assert metrics.normalised_entropy(p) == pytest.approx(_label_order_sum(p), rel=1e-14)
    assert differs > 0


def test_float32_text_round_trips_every_float32():
    rng = np.random.default_rng(1)
    values = rng.dirichlet(np.full(7, 0.3), size=2000).astype(np.float32).ravel()
    values = np.concatenate([values, np.float32([1e-30, 1.0, 0.0, np.float32(1) / 3])])
    for value in values:
        assert np.float32(format_float32(value)) == value
    assert format_float32(None) == "" and format_float32(float("nan")) == ""
    assert format_float32(0.25) == "0.25"
