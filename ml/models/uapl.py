"""UAPL (uncertain-aware patch learning): patch attention on the backbone's feature map.

The UAPL abstract describes cropping the feature map into regional patches and learning patch-level
attention weights that down-weight occluded regions; the fused feature then feeds the classifier and the
same ULDL label-distribution target. Here: a 2x2 grid of regional patches plus the global patch, each
average-pooled to a (D,) vector, scored by a small shared MLP with a sigmoid (as in region attention
networks), and fused by the attention-weighted mean. Everything downstream treats the fused feature
exactly like the plain ResNet feature.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.models.backbones import Backbone
from ml.models.uldl import ExpressionNet

__all__ = ["PatchAttention", "UAPLNet"]


class PatchAttention(nn.Module):
    """(B, P, D) patch features -> (B, P) weights in (0, 1), one shared scorer for every patch."""

    def __init__(self, feature_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(16, feature_dim // 4)
        self.score = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score(patches).squeeze(-1))


class UAPLNet(ExpressionNet):
    """ExpressionNet whose feature is the attention-fused mean of 2x2 regional patches and the global one."""

    def __init__(self, backbone: Backbone, num_classes: int, grid: int = 2):
        super().__init__(backbone, num_classes)
        self.grid = grid
        self.attention = PatchAttention(self.feature_dim)

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, grid*grid + 1, D): regional patches, then the global patch."""
        fmap = self.backbone.forward_map(x)
        regions = F.adaptive_avg_pool2d(fmap, self.grid).flatten(2).transpose(1, 2)  # (B, g*g, D)
        whole = fmap.mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, D)
        return torch.cat([regions, whole], dim=1)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, P) patch weights (useful to see which regions were trusted)."""
        return self.attention(self.patch_features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_features(x)
        weights = self.attention(patches)
        return (weights.unsqueeze(-1) * patches).sum(1) / weights.sum(1, keepdim=True)
