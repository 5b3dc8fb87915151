"""Training on human label distributions (`python -m ml.train --soft-labels FILE`): targets and ULDL's objective.

CE: the target is the human distribution h_i itself (soft cross entropy). LS: h_i smoothed like a label,
(1 - eps) h_i + eps / C. ULDL: the given label is y_i = argmax h_i and the human distribution takes the
place of ULDL's contextual distribution c_i (which ULDL estimates from VA neighbours because it has no
human panel): d_i = lam_i onehot(y_i) + (1 - lam_i) h_i, lam_i learned per image as in ULDL (ref §4-5),
plus the discriminative centre loss over the batch's anchors (no neighbours, hence no AdaptiveSimNet).
"""
from __future__ import annotations

import torch
from torch import nn

from ml.ldl import UncertaintyFactors, target_distribution
from ml.losses import DiscriminativeLoss, soft_cross_entropy

__all__ = ["HumanTargetObjective", "plain_soft_target"]


def plain_soft_target(human: torch.Tensor, method: str, label_smoothing: float) -> torch.Tensor:
    """CE's target: the human distribution; LS's: the human distribution smoothed towards uniform."""
    if method == "ls":
        return (1.0 - label_smoothing) * human + label_smoothing / human.shape[1]
    return human


class HumanTargetObjective(nn.Module):
    """ULDL's target and loss with the human distribution as the context (see the module docstring).

    Same interface as ml.ldl.ULDLObjective where ml.train touches it: `factors`, `update_centres`,
    `model_parameters`, `state_dict`.
    """

    def __init__(self, *, n: int, feature_dim: int, num_classes: int, gamma: float = 0.01, lambda_init: float = 0.5,
                 class_weights: torch.Tensor | None = None, push_scale: float | None = None):
        super().__init__()
        self.gamma = gamma
        self.factors = UncertaintyFactors(n, lambda_init)
        self.centre_loss = DiscriminativeLoss(num_classes, feature_dim, push_scale=push_scale)
        self.register_buffer("class_weights", None if class_weights is None
                             else torch.as_tensor(class_weights, dtype=torch.float32), persistent=False)

    def forward(self, *, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
                human: torch.Tensor) -> dict[str, torch.Tensor]:
        lam = self.factors(index)
        target = target_distribution(labels, lam, human)  # not detached: lam learns from the loss (ULDL ref §4)
        weights = None if self.class_weights is None else self.class_weights[labels]
        classification = soft_cross_entropy(logits, target, weights)
        rows = (features, labels, lam.detach())
        discriminative = self.centre_loss(*rows)
        loss = classification + self.gamma * discriminative
        return {"loss": loss, "classification": classification.detach(), "discriminative": discriminative.detach(),
                "lam": lam.detach(), "target": target.detach(), "centre_rows": tuple(r.detach() for r in rows)}

    def update_centres(self, centre_rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        self.centre_loss.update_centres(*centre_rows)

    def model_parameters(self):
        return iter(())
