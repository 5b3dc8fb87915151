"""ULDL label-distribution construction against hand-computed cases (ULDL_REFERENCE.md §2.7, §4, §5)."""
import math

import numpy as np
import pytest
import torch

from ml.ldl import (
    LazySGD,
    NeighbourBank,
    ULDLObjective,
    UncertaintyFactors,
    contextual_distribution,
    knn_in_va,
    lambda_auroc,
    target_distribution,
    va_similarity,
)
from ml.losses import soft_cross_entropy


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_target_distribution_matches_hand_computation_for_two_classes_two_neighbours():
    # anchor VA (0, 0); neighbour 1 at (0.5, 0): L1 0.5; neighbour 2 at (0, 0.25): L1 0.25
    a1, a2 = math.exp(-0.5 / 0.5), math.exp(-0.25 / 0.5)
    s1, s2 = 0.5, 1.0  # calibration scores
    p1, p2 = (0.8, 0.2), (0.4, 0.6)  # neighbour predictions
    w1, w2 = a1 * s1, a2 * s2
    c0 = (w1 * p1[0] + w2 * p2[0]) / (w1 + w2)
    lam = sigmoid(0.5)  # initial logit 0.5 -> lam 0.6225
    expected = [lam * 1 + (1 - lam) * c0, (1 - lam) * (1 - c0)]  # given label is class 0

    similarity = va_similarity(torch.tensor([[0.5, 0.25]]))
    context = contextual_distribution(similarity, torch.tensor([[s1, s2]]), torch.tensor([[p1, p2]]))
    target = target_distribution(torch.tensor([0]), torch.tensor([lam]), context)

    assert similarity[0].tolist() == pytest.approx([a1, a2], rel=1e-6)
    assert target[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx([0.808617, 0.191383], abs=1e-5)  # the numbers written out once


def test_target_stays_differentiable_in_lambda_and_calibration():
    lam = torch.tensor([0.6], requires_grad=True)
    calib = torch.tensor([[0.5, 0.9]], requires_grad=True)
    context = contextual_distribution(torch.tensor([[1.0, 0.5]]), calib, torch.tensor([[[0.9, 0.1], [0.2, 0.8]]]))
    target_distribution(torch.tensor([1]), lam, context)[0, 0].backward()
    assert lam.grad is not None and lam.grad.item() != 0
    assert calib.grad is not None and calib.grad.abs().sum() > 0


def test_knn_uses_l1_distance_excludes_self_and_orders_nearest_first():
    # From (0,0): (0.6, 0) is nearer in L1 (0.6 < 0.7) but farther in L2 (0.6 > 0.495) than (0.35, 0.35).
    va = np.array([[0, 0], [0.35, 0.35], [0.6, 0.0], [-1, -1]], dtype=np.float32)
    index, sim = knn_in_va(va, k=2)
    assert index[0].tolist() == [2, 1]
    assert sim[0].tolist() == pytest.approx([math.exp(-0.6 / 0.5), math.exp(-0.7 / 0.5)], rel=1e-5)
    assert all(i not in row for i, row in enumerate(index.tolist()))


def test_knn_in_chunks_equals_knn_in_one_go():
    va = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    whole = knn_in_va(va, k=8)
    chunked = knn_in_va(va, k=8, max_chunk_elems=60)  # one row per chunk
    assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])


def test_knn_refuses_missing_valence_arousal_and_too_few_images():
    with pytest.raises(ValueError, match="no valence/arousal"):
        knn_in_va(np.array([[0, 0], [np.nan, 0.1], [0.2, 0.2]]), k=1)
    with pytest.raises(ValueError, match="more than k"):
        knn_in_va(np.zeros((3, 2)), k=3)


def test_lambda_gradient_matches_reference_formula_and_sgd_step_moves_only_batch_rows():
    factors = UncertaintyFactors(5, init_logit=0.5)
    optim = LazySGD(factors.parameters(), lr=10.0)
    index = torch.tensor([1, 3])
    labels = torch.tensor([0, 1])
    logits = torch.tensor([[2.0, 0.0], [0.5, 0.1]])
    context = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    lam = factors(index)
    assert lam.tolist() == pytest.approx([sigmoid(0.5)] * 2)
    soft_cross_entropy(logits, target_distribution(labels, lam, context)).backward()
    optim.step()

    p = logits.softmax(1)
    for row, (i, y) in enumerate(zip(index.tolist(), labels.tolist(), strict=False)):
        h_label = -math.log(p[row, y] + 1e-10)
        h_context = -(context[row] * torch.log(p[row] + 1e-10)).sum().item()
        s = sigmoid(0.5)
        grad = (1 / 2) * s * (1 - s) * (h_label - h_context)  # ULDL ref §5 gradient, B = 2
        assert factors.logit[i, 0].item() == pytest.approx(0.5 - 10 * grad, rel=1e-5)
    assert factors.logit[[0, 2, 4], 0].tolist() == [0.5, 0.5, 0.5]


def test_lazy_momentum_leaves_rows_absent_from_the_batch_alone():
    factors = UncertaintyFactors(3, init_logit=0.0)
    optim = LazySGD(factors.parameters(), lr=1.0, momentum=0.9)
    factors(torch.tensor([0])).sum().backward()
    optim.step()
    after_first = factors.logit[0, 0].item()
    optim.zero_grad()
    factors(torch.tensor([1])).sum().backward()  # row 0 is absent: TF's sparse kernel does not move it
    optim.step()
    assert factors.logit[0, 0].item() == after_first
    assert factors.logit[1, 0].item() < 0 and factors.logit[2, 0].item() == 0.0


def make_objective(n=6, k=2, d=4, c=3):
    torch.manual_seed(0)
    index, sim = knn_in_va(np.random.default_rng(1).uniform(-1, 1, (n, 2)), k=k)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])[:n]
    return ULDLObjective(knn_index=index, knn_similarity=sim, given_labels=labels, feature_dim=d, num_classes=c)


def test_objective_loss_is_cross_entropy_plus_gamma_times_centre_loss_and_trains_lambda_and_asn():
    objective = make_objective()
    index = torch.tensor([0, 2, 4])
    features = torch.randn(3, 4, requires_grad=True)
    logits = torch.randn(3, 3, requires_grad=True)
    out = objective(features=features, logits=logits, labels=objective.given_labels[index], index=index,
                    neighbour_features=torch.randn(3, 2, 4), neighbour_probs=torch.softmax(torch.randn(3, 2, 3), 2))
    assert out["loss"].item() == pytest.approx(out["classification"].item() + 0.01 * out["discriminative"].item())
    assert out["target"].sum(1).tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    assert len(out["centre_rows"][0]) == 3 * (1 + 2)  # anchors + B*K neighbours (ref §6.2)
    out["loss"].backward()
    assert objective.factors.logit.grad is not None
    assert all(p.grad is not None for p in objective.asn.parameters())
    assert features.grad.abs().sum() > 0
    before = objective.centre_loss.centres.clone()
    objective.update_centres(out["centre_rows"])
    assert not torch.equal(before, objective.centre_loss.centres)


def test_bank_lookup_returns_latest_update_per_row():
    bank = NeighbourBank(4, feature_dim=2, num_classes=3)
    assert bank.probs[0].tolist() == pytest.approx([1 / 3] * 3)
    bank.update(torch.tensor([1, 3]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    features, probs = bank.lookup(torch.tensor([[3, 1]]))
    assert features.tolist() == [[[3.0, 4.0], [1.0, 2.0]]]
    assert probs[0, 0].tolist() == [0, 1.0, 0]


def test_lambda_auroc_is_one_when_flipped_labels_have_the_lowest_lambda():
    lam = np.array([0.9, 0.8, 0.1, 0.7, 0.2])
    flipped = np.array([0, 0, 1, 0, 1], dtype=bool)
    assert lambda_auroc(lam, flipped) == 1.0
    assert lambda_auroc(1 - lam, flipped) == 0.0
    assert math.isnan(lambda_auroc(lam, np.zeros(5, dtype=bool)))
