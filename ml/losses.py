"""Losses: soft cross entropy against a distribution and the ULDL discriminative (centre) loss."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LOG_EPS", "soft_cross_entropy", "onehot_targets", "smoothed_targets", "DiscriminativeLoss"]

LOG_EPS = 1e-10  # ULDL ref §6.1: log(p + 1e-10)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """mean_i w_i * sum_c -d_ic log(p_ic + 1e-10).  (B, C), (B, C), (B,) -> ().

    ULDL ref §6.1: the log of the softmax probability plus 1e-10 (not log-softmax), a plain batch mean that
    is not normalised by the sum of the class weights.
    """
    per_sample = -(target * torch.log(logits.softmax(dim=1) + LOG_EPS)).sum(dim=1)
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean()


def onehot_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) -> (B, C) one-hot; with soft_cross_entropy this is the `ce` baseline."""
    return F.one_hot(labels, num_classes).float()


def smoothed_targets(labels: torch.Tensor, num_classes: int, eps: float = 0.1) -> torch.Tensor:
    """(B,) -> (B, C) label smoothing: (1 - eps) * onehot + eps / C (torch's `label_smoothing` definition)."""
    return (1.0 - eps) * onehot_targets(labels, num_classes) + eps / num_classes


class DiscriminativeLoss(nn.Module):
    """Lambda-weighted centre loss, with the reference's hand-written centre pull and push (ULDL ref §6.2).

    The centres are a (C, D) buffer starting at zero, moved only by `update_centres` (never by the
    optimiser). The push term that separates centres acts on the centres only, not on the backbone.
    """

    def __init__(self, num_classes: int, feature_dim: int, *, alpha: float = 0.5, push_weight: float = 0.1,
                 push_scale: float | None = None):
        super().__init__()
        # ULDL ref §6.2: the push kernel is exp(-||c_i - c_j||^2 / D) with D the feature size (512 there);
        # push_scale overrides D (e.g. 512 for the pre-issue-14 behaviour on any backbone).
        if push_scale is not None and push_scale <= 0:
            raise ValueError(f"push_scale must be positive, got {push_scale}")
        self.alpha, self.push_weight = alpha, push_weight  # ULDL ref §6.2 constants
        self.push_scale = float(feature_dim if push_scale is None else push_scale)
        self.register_buffer("centres", torch.zeros(num_classes, feature_dim))  # ULDL ref §6.2: zeros

    def forward(self, features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """L_c = 1/(2N) sum_n lam_n ||x_n - c_{y_n}||^2.  (N, D), (N,), (N,) -> ()."""
        sq = ((features - self.centres[labels]) ** 2).sum(dim=1)
        return (weights.detach() * sq).sum() / (2 * features.shape[0])  # ULDL ref §6.2: lam stop-gradient

    @torch.no_grad()
    def update_centres(self, features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> None:
        """Pull each centre towards its rows, then push centres apart. (N, D), (N,), (N,).

        Called after the model and lam steps with the forward-time features and pre-step lam (ref §7 step 10).
        """
        c = self.centres
        n = features.shape[0]
        diff = weights.unsqueeze(1) * (features.detach().to(c.dtype) - c[labels])
        summed = torch.zeros_like(c).index_add_(0, labels, diff)
        counts = torch.bincount(labels, minlength=c.shape[0]).to(c.dtype)
        c += self.alpha * summed / ((counts + 1).unsqueeze(1) * n)  # ULDL ref §6.2 pull: /((n_k+1)*N)
        pair = c.unsqueeze(1) - c.unsqueeze(0)  # (C, C, D): c_i - c_j
        kernel = torch.exp(-(pair ** 2).sum(-1) / self.push_scale)
        # ULDL ref §6.2 push: c <- c - alpha*0.1*dS_B/dc with S_B = sum_{i<j} exp(-||c_i-c_j||^2 / D)
        c += self.alpha * self.push_weight * (2.0 / self.push_scale) * (kernel.unsqueeze(-1) * pair).sum(1)
