"""ULDL networks: the expression classifier (backbone + FC) and the AdaptiveSimNet calibrator.

The classifier is all that inference needs, so it is what checkpoints store for the Predictor; the
AdaptiveSimNet only exists during training (ULDL ref §3.2, §8: test time is a plain classifier).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ml.models.backbones import Backbone

__all__ = ["AdaptiveSimNet", "ExpressionNet", "keras_he_normal_", "ASN_LOGIT_FLOOR"]

# ULDL ref §3.2 step 8: the calibration logit is clamped from below at -1.3, so s_ij >= sigmoid(-1.3) ~ 0.214.
ASN_LOGIT_FLOOR = -1.3
# Keras' truncated-normal correction: std of a standard normal truncated at +-2 sigma.
_TRUNC_STD = 0.87962566103423978


def keras_he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras HeNormal: truncated normal, std sqrt(2/fan_in)/0.8796, cut at +-2 std (ULDL ref §9.14)."""
    fan_in = weight.shape[1]
    std = math.sqrt(2.0 / fan_in) / _TRUNC_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def _keras_dense(fan_in: int, fan_out: int, init: str = "he") -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out)
    if init == "he":
        keras_he_normal_(layer.weight)
    else:  # Keras' default Dense kernel initialiser
        nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ExpressionNet(nn.Module):
    """Backbone + linear classifier: (B, 3, H, W) -> (features (B, D), logits (B, C)).

    The reference's Dense(C, softmax) returns probabilities (ULDL ref §3.1); this returns logits and the
    loss applies the softmax, which is the same function split at a different place.
    """

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        self.num_classes = num_classes
        self.classifier = _keras_dense(self.feature_dim, num_classes)  # ULDL ref §3.1: HeNormal, zero bias

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> ((B, D) features, (B, C) logits)."""
        f = self.features(x)
        return f, self.classifier(f)


class AdaptiveSimNet(nn.Module):
    """Scores how far each neighbour's prediction can be trusted: ([f_i; f_j]) -> s_ij in [sigmoid(-1.3), 1).

    ULDL ref §3.2: Dense 2D->512, BN, ReLU, Dense 512->256, BN, ReLU, Dense 256->1, max(x, -1.3), sigmoid.
    BatchNorm uses Keras' eps 1e-3 over all B*K rows; the reference only ever runs it in training mode.
    """

    def __init__(self, feature_dim: int, hidden: tuple[int, int] = (512, 256)):
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            _keras_dense(2 * feature_dim, h1), nn.BatchNorm1d(h1, eps=1e-3), nn.ReLU(inplace=True),
            _keras_dense(h1, h2), nn.BatchNorm1d(h2, eps=1e-3), nn.ReLU(inplace=True),
            _keras_dense(h2, 1, init="glorot"),
        )

    def forward(self, anchor: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """anchor (B, D), neighbours (B, K, D) -> s (B, K)."""
        b, k, d = neighbours.shape
        pairs = torch.cat([anchor.unsqueeze(1).expand(b, k, d), neighbours], dim=2)  # ULDL ref §3.2: [f_i; f_j]
        logit = self.net(pairs.reshape(b * k, 2 * d)).reshape(b, k)
        return torch.sigmoid(torch.clamp(logit, min=ASN_LOGIT_FLOOR))  # ULDL ref §3.2 steps 8-9
