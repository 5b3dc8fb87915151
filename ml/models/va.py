"""Valence-arousal regressor: backbone + Linear(D, 2) + tanh, so outputs lie in [-1, 1] like VA labels.

Used to give datasets without VA (e.g. RAF-DB) pseudo valence/arousal for ULDL's neighbour search
(ULDL ref §2.6: RAF-DB's VA in the official CSV is model-predicted).
"""
from __future__ import annotations

import torch
from torch import nn

from ml.models.backbones import Backbone

__all__ = ["VARegressor", "va_loss"]


class VARegressor(nn.Module):
    """(B, 3, H, W) -> (B, 2) (valence, arousal) in (-1, 1)."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        self.head = nn.Linear(self.feature_dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.backbone(x)))


def va_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over rows whose VA is known; rows with NaN targets are ignored. (B, 2) -> ()."""
    known = ~torch.isnan(target).any(dim=1)
    if not known.any():
        return pred.sum() * 0.0
    return torch.mean((pred[known] - target[known]) ** 2)
