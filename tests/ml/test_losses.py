"""Soft cross entropy and the discriminative (centre) loss on hand-computed cases (ULDL ref §6)."""
import math

import pytest
import torch

from ml.losses import DiscriminativeLoss, onehot_targets, smoothed_targets, soft_cross_entropy


def test_soft_cross_entropy_is_weighted_batch_mean_of_minus_target_log_prob():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # probabilities (0.5, 0.5) and (0.75, 0.25)
    target = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    per_sample = [-math.log(0.5), -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))]
    assert soft_cross_entropy(logits, target).item() == pytest.approx(sum(per_sample) / 2, rel=1e-6)
    weights = torch.tensor([2.0, 0.5])  # not normalised by the weight sum (ref §6.1)
    assert soft_cross_entropy(logits, target, weights).item() == pytest.approx(
        (2 * per_sample[0] + 0.5 * per_sample[1]) / 2, rel=1e-6)


def test_baseline_targets_are_onehot_and_smoothed_distributions():
    labels = torch.tensor([2, 0])
    assert onehot_targets(labels, 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    smooth = smoothed_targets(labels, 4, eps=0.2)
    assert smooth[0].tolist() == pytest.approx([0.05, 0.05, 0.85, 0.05])
    assert smooth.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_discriminative_loss_matches_hand_computation():
    loss = DiscriminativeLoss(num_classes=2, feature_dim=2)
    loss.centres.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    features = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    lam = torch.tensor([0.5, 1.0, 0.25], requires_grad=True)
    # squared distances to own centre: 1, 4, 1; weighted: 0.5 + 4 + 0.25 = 4.75; / (2 N) with N = 3
    value = loss(features, labels, lam)
    assert value.item() == pytest.approx(4.75 / 6)
    value.backward()
    assert lam.grad is None  # lam enters with stop-gradient (ref §6.2)
    assert features.grad[0].tolist() == pytest.approx([0.5 * (2 - 1) / 3, 0.0])  # lam (x - c) / N


def test_centre_pull_matches_reference_rule():
    loss = DiscriminativeLoss(num_classes=3, feature_dim=2, push_weight=0.0)
    features = torch.tensor([[2.0, 0.0], [4.0, 2.0], [0.0, -3.0]])
    labels = torch.tensor([0, 0, 1])
    lam = torch.tensor([1.0, 0.5, 0.8])
    loss.update_centres(features, labels, lam)
    n = 3  # c_k += 0.5 * sum lam (x - c_k) / ((n_k + 1) N), centres start at zero
    c0 = [0.5 * (1.0 * 2 + 0.5 * 4) / (3 * n), 0.5 * (0.5 * 2) / (3 * n)]
    c1 = [0.0, 0.5 * (0.8 * -3) / (2 * n)]
    assert loss.centres.tolist() == [pytest.approx(c0), pytest.approx(c1), [0.0, 0.0]]


def test_centre_push_moves_centres_apart_and_only_centres():
    loss = DiscriminativeLoss(num_classes=2, feature_dim=2, push_scale=512.0)
    loss.centres.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    # no pull: every row has lam 0; push: c_i += (0.1 / 512) * exp(-||c_i - c_j||^2 / 512) * (c_i - c_j)
    loss.update_centres(torch.zeros(2, 2), torch.tensor([0, 1]), torch.zeros(2))
    step = 0.1 / 512 * math.exp(-4 / 512) * 2
    assert loss.centres.tolist() == [pytest.approx([1 + step, 0.0]), pytest.approx([-1 - step, 0.0])]


def test_push_is_zero_while_all_centres_are_equal():
    loss = DiscriminativeLoss(num_classes=4, feature_dim=3)
    loss.update_centres(torch.zeros(1, 3), torch.tensor([0]), torch.zeros(1))
    assert torch.count_nonzero(loss.centres) == 0


@pytest.mark.parametrize("feature_dim", [128, 512])
def test_push_scale_is_the_feature_size_by_default(feature_dim):
    """ULDL ref §6.2: S_B = sum exp(-||ci - cj||^2 / D), D the feature size (not a constant 512)."""
    loss = DiscriminativeLoss(num_classes=2, feature_dim=feature_dim)
    assert loss.push_scale == feature_dim
    centres = torch.zeros(2, feature_dim)
    centres[0, 0], centres[1, 0] = 1.0, -1.0
    loss.centres.copy_(centres)
    loss.update_centres(torch.zeros(2, feature_dim), torch.tensor([0, 1]), torch.zeros(2))
    step = 0.5 * 0.1 * (2.0 / feature_dim) * math.exp(-4 / feature_dim) * 2
    assert loss.centres[0, 0].item() == pytest.approx(1 + step, rel=1e-6)
    assert loss.centres[1, 0].item() == pytest.approx(-1 - step, rel=1e-6)


def test_push_scale_flag_overrides_the_feature_size_and_refuses_nonsense():
    assert DiscriminativeLoss(2, 128, push_scale=512.0).push_scale == 512.0
    with pytest.raises(ValueError, match="push_scale"):
        DiscriminativeLoss(2, 128, push_scale=0.0)
