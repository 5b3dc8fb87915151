"""Aggregation methods and voter quality on hand cases and on a simulated crowd with known spammers."""
import numpy as np
import pytest

from study.analysis import aggregation as agg


def test_majority_shares_ties_and_leaves_unvoted_rows_nan():
    out = agg.majority(np.array([[3, 1, 0], [2, 2, 1], [0, 0, 0]]))
    assert out[0].tolist() == [1, 0, 0]
    assert out[1].tolist() == [0.5, 0.5, 0]
    assert np.isnan(out[2]).all()


@pytest.mark.parametrize("counts,expected", [
    # one outlier vote dropped; the top label covers 8/9 >= 75% of the rest
    ([8, 1, 1, 0], [1, 0, 0, 0]),
    # 5 of 8 < 75%, so the second label joins: 5/8, 3/8
    ([5, 3, 1, 1], [5 / 8, 3 / 8, 0, 0]),
    # ties join together: 4 + 4 = 80% of 10, so the third label is left out
    ([4, 4, 2, 0], [0.5, 0.5, 0, 0]),
    # every voter disagreed: nothing to sharpen, raw shares
    ([1, 1, 1, 0], [1 / 3, 1 / 3, 1 / 3, 0]),
])
def test_ferplus_probability_mode(counts, expected):
    assert agg.ferplus(np.array([counts])) == pytest.approx(np.array([expected]))


def test_ferplus_keeps_at_most_three_labels_else_raw():
    # the next tie group would make four labels: stop at 5 of 11 votes, no more than half -> raw shares
    assert agg.ferplus(np.array([[5, 2, 2, 2, 0]]))[0] == pytest.approx([5 / 11, 2 / 11, 2 / 11, 2 / 11, 0])
    # a first tie group is taken whole: no rule could choose among its labels
    assert agg.ferplus(np.array([[2, 2, 2, 2, 2, 0]]))[0] == pytest.approx([0.2] * 5 + [0])


@pytest.fixture(scope="module")
def crowd():
    """40 images, 6 careful voters who vote the true label 85% of the time, 3 spammers voting at random."""
    rng = np.random.default_rng(0)
    n_tasks, k = 40, 4
    truth = rng.integers(k, size=n_tasks)
    task, worker, label = [], [], []
    for t in range(n_tasks):
        for w in range(9):
            careful = w < 6
            choice = truth[t] if careful and rng.uniform() < 0.85 else int(rng.integers(k))
            task.append(t), worker.append(f"w{w}"), label.append(choice)
    return truth, agg.Votes.from_lists(task, worker, label, n_tasks=n_tasks, n_labels=k)


@pytest.fixture(scope="module")
def aggregated(crowd):
    """Each method fitted once (GLAD and MACE take seconds)."""
    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = agg.aggregate(method, crowd[1])
        return cache[method]
    return get


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m in ("glad", "mace") else m
                                    for m in agg.METHODS])
def test_every_method_returns_distributions_that_find_the_true_label(crowd, aggregated, method):
    truth, votes = crowd
    out = aggregated(method)
    assert out.shape == (40, 4)
    assert np.allclose(out.sum(1), 1)
    assert (out.argmax(1) == truth).mean() >= 0.9


@pytest.mark.parametrize("method", ["dawid_skene", pytest.param("glad", marks=pytest.mark.slow),
                                    pytest.param("mace", marks=pytest.mark.slow)])
def test_reliability_models_are_sharper_than_raw_shares(aggregated, method):
    assert aggregated(method).max(1).mean() > aggregated("raw").max(1).mean()


def test_unknown_method_is_a_clear_error(crowd):
    with pytest.raises(ValueError, match="unknown aggregation"):
        agg.aggregate("median", crowd[1])


def test_images_without_votes_stay_nan_for_model_methods():
    votes = agg.Votes.from_lists([0, 0, 2, 2], ["a", "b", "a", "b"], [1, 1, 0, 0], n_tasks=3, n_labels=2)
    out = agg.aggregate("dawid_skene", votes)
    assert np.isnan(out[1]).all() and out[0].argmax() == 1 and out[2].argmax() == 0


def test_spammers_have_lower_leave_one_out_agreement_and_dawid_skene_skill(crowd):
    _, votes = crowd
    loo = agg.leave_one_out_agreement(votes)
    skill = {w: q["skill"] for w, q in agg.dawid_skene_quality(votes).items()}
    careful, spam = [f"w{i}" for i in range(6)], ["w6", "w7", "w8"]
    assert min(loo[w] for w in careful) > max(loo[w] for w in spam)
    assert min(skill[w] for w in careful) > max(skill[w] for w in spam)
    confusion = np.array(agg.dawid_skene_quality(votes)["w0"]["confusion"])
    assert np.allclose(confusion.sum(1), 1) and np.diag(confusion).mean() > 0.7


def test_leave_one_out_by_hand():
    # image 0: a, b say 0, c says 1; image 1: only a
    votes = agg.Votes.from_lists([0, 0, 0, 1], ["a", "b", "c", "a"], [0, 0, 1, 1], n_tasks=2, n_labels=2)
    assert agg.leave_one_out_agreement(votes) == {"a": 0.5, "b": 0.5, "c": 0.0}


def test_model_agreement_and_response_times():
    votes = agg.Votes.from_lists([0, 1, 0], ["a", "a", "b"], [0, 1, 1], n_tasks=2, n_labels=2)
    probs = np.array([[0.8, 0.2], [np.nan, np.nan]])
    result = agg.model_agreement(votes, probs)
    assert result["a"] == {"probability": 0.8, "top1": 1.0, "n": 1}
    assert result["b"]["probability"] == pytest.approx(0.2) and result["b"]["top1"] == 0.0
    profile = agg.response_time_profile(np.array(["a", "a", "a", "b"]), np.array([100, 900, 1100, np.nan]))
    assert profile["a"]["median"] == 900 and profile["a"]["fast_share"] == pytest.approx(1 / 3)
    assert profile["b"]["n"] == 0
