"""Label noise (ULDL Table 1 protocol): exact count, only other classes, uniform, reproducible."""
import numpy as np
import pytest

from ml.data.label_noise import apply_label_noise


@pytest.mark.parametrize("rate, n", [(0.1, 1000), (0.2, 333), (0.3, 7), (0.3, 10), (1.0, 50)])
def test_flips_exactly_round_rate_times_n_labels(rate, n):
    labels = np.arange(n) % 7
    noisy, flipped = apply_label_noise(labels, rate, 7, seed=0)
    assert flipped.sum() == round(rate * n)
    assert np.array_equal(noisy != labels, flipped)


def test_flipped_labels_always_move_to_another_class_and_others_stay():
    labels = np.random.default_rng(1).integers(0, 7, 5000)
    noisy, flipped = apply_label_noise(labels, 0.4, 7, seed=3)
    assert np.all(noisy[flipped] != labels[flipped])
    assert np.array_equal(noisy[~flipped], labels[~flipped])
    assert noisy.dtype == np.int64 and noisy.min() >= 0 and noisy.max() < 7


def test_new_class_is_uniform_over_the_other_classes():
    labels = np.zeros(60000, dtype=np.int64)
    noisy, flipped = apply_label_noise(labels, 0.5, 7, seed=0)
    counts = np.bincount(noisy[flipped], minlength=7)
    assert counts[0] == 0
    expected = flipped.sum() / 6
    assert np.all(np.abs(counts[1:] - expected) < 0.05 * expected)  # ~5000 each; 5% is > 6 sigma


def test_same_seed_same_flips_and_different_seed_different_flips():
    labels = np.arange(200) % 5
    a = apply_label_noise(labels, 0.3, 5, seed=11)
    b = apply_label_noise(labels, 0.3, 5, seed=11)
    c = apply_label_noise(labels, 0.3, 5, seed=12)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_input_labels_are_not_modified_and_rate_zero_is_identity():
    labels = np.arange(20) % 4
    before = labels.copy()
    noisy, flipped = apply_label_noise(labels, 0.0, 4, seed=0)
    assert np.array_equal(labels, before) and np.array_equal(noisy, labels) and not flipped.any()
    apply_label_noise(labels, 0.5, 4, seed=0)
    assert np.array_equal(labels, before)


@pytest.mark.parametrize("labels, rate, classes", [([0, 1, 2], 1.5, 3), ([0, 1, 2], -0.1, 3), ([0, 1], 0.5, 1),
                                                   ([0, 3], 0.5, 3), ([[0, 1]], 0.5, 2)])
def test_bad_arguments_raise_value_error(labels, rate, classes):
    with pytest.raises(ValueError):
        apply_label_noise(labels, rate, classes, seed=0)
