"""mini-Xception (Arriaga et al. 2017): the 57k-parameter FER2013 classifier of the `fer` package.

Input: (N, 1, 64, 64) grayscale scaled to [-1, 1]. forward -> (features (N, 128), logits (N, C)), the
same contract as ExpressionNet so Predictor treats it like any EmoStudy classifier. Layer names mirror
the Keras model so `ml.fer_baseline` can copy the weights one to one.

Keras 'same' max-pooling pads bottom/right when the total padding is odd; PyTorch pads symmetrically, so
the pooling here pads explicitly with -inf the way TensorFlow does.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

__all__ = ["MiniXception", "tf_same_pads"]

BN_EPS = 1e-3  # Keras default, not PyTorch's 1e-5


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis: any odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, no bias (Keras SeparableConv2D, padding 'same')."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """Residual Xception block: two separable convs + 3x3/2 max-pool, plus a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x):
        h, w = x.shape[2:]
        # 1x1 stride-2 'same' never pads (for any size), so the shortcut needs no explicit padding
        residual = self.shortcut_bn(self.shortcut(x))
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        top, bottom = tf_same_pads(h, 3, 2)
        left, right = tf_same_pads(w, 3, 2)
        y = F.pad(y, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(y, 3, 2) + residual


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = 7, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.Sequential(_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128))
        self.classifier = nn.Conv2d(128, num_classes, 3, padding=1, bias=True)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        features = x.mean(dim=(2, 3))
        logits = self.classifier(x).mean(dim=(2, 3))
        return features, logits
