"""The adaptive allocation policy: stability, not consensus; balance; determinism."""
import numpy as np
import pytest

from study.analysis.allocation import AllocationPolicy, allocation_order, instability, settled


def test_instability_falls_with_votes_and_faster_for_agreement():
    prior = 0.25
    agree = instability(np.array([[n, 0, 0, 0, 0, 0, 0] for n in (3, 6, 12, 24)]), prior)
    split = instability(np.array([[n, n, n // 3, 0, 0, 0, 0] for n in (3, 6, 12, 24)]) , prior)
    assert np.all(np.diff(agree) < 0) and np.all(np.diff(split) < 0)
    assert instability(np.array([[6, 0, 0, 0, 0, 0, 0]]), prior) < instability(np.array([[2, 2, 2, 0, 0, 0, 0]]), prior)


def test_instability_is_a_deterministic_function_of_the_vote_pattern():
    counts = np.array([[3, 1, 0, 2], [0, 2, 3, 1], [1, 0, 2, 3], [5, 0, 0, 1]])
    values = instability(counts, 0.3)
    assert values[0] == values[1] == values[2]  # the same pattern in another label order: bit-equal
    assert np.array_equal(values, instability(counts, 0.3))


def test_below_min_images_come_first_fewest_votes_first():
    counts = np.array([[1, 1, 0], [0, 0, 0], [2, 0, 0], [4, 4, 3]])
    order = allocation_order(counts, AllocationPolicy(min_votes=3, max_votes=30, threshold=0.001, prior=0.3))
    assert order[:3].tolist() == [1, 0, 2]
    assert order.tolist() == [1, 0, 2, 3]


def test_max_votes_closes_and_settled_images_are_not_served():
    policy = AllocationPolicy(min_votes=2, max_votes=10, threshold=0.01, prior=0.3)
    counts = np.array([[5, 5, 0], [9, 0, 0], [3, 3, 2], [1, 0, 0]])
    assert settled(counts, policy).tolist() == [True, False, False, False]  # [5, 5] is at the max
    counts[1] = [60, 0, 0]
    assert settled(counts, AllocationPolicy(min_votes=2, max_votes=100, threshold=0.01, prior=0.3))[1]
    order = allocation_order(counts, policy)
    assert 0 not in order and 1 not in order and order[0] == 3


def test_an_ambiguous_face_settles_too_once_its_split_is_pinned_down():
    """Never a consensus rule: a 50/50 face stops when its 50/50 is stable, not never."""
    policy = AllocationPolicy(min_votes=3, max_votes=1000, threshold=0.02, prior=0.3)
    assert not settled(np.array([[5, 5, 0, 0]]), policy)[0]
    assert settled(np.array([[150, 150, 0, 0]]), policy)[0]
    # and unanimity at the minimum is not enough on its own when the threshold asks for more
    assert not settled(np.array([[3, 0, 0, 0]]), policy)[0]


def test_pending_votes_count_towards_the_max_and_lower_the_priority():
    policy = AllocationPolicy(min_votes=1, max_votes=6, threshold=1e-6, prior=0.3)
    counts = np.array([[2, 2, 0], [2, 2, 0]])
    order = allocation_order(counts, policy, pending=np.array([1, 0]))
    assert order.tolist() == [1, 0]
    assert allocation_order(counts, policy, pending=np.array([2, 0])).tolist() == [1]


def test_ties_follow_the_tie_break_and_prior_defaults_to_the_study_fit():
    counts = np.zeros((4, 3))
    policy = AllocationPolicy(min_votes=2, max_votes=5, threshold=0.01)
    assert allocation_order(counts, policy, tie_break=np.array([3, 1, 2, 0])).tolist() == [3, 1, 2, 0]


@pytest.mark.parametrize("kwargs", [dict(min_votes=0), dict(min_votes=5, max_votes=4), dict(threshold=0),
                                    dict(threshold=1.5), dict(rank="random")])
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        AllocationPolicy(**kwargs)
