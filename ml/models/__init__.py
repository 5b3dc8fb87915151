"""Model zoo. `build_model(arch, num_classes)` rebuilds any trained network from its `arch` string.

arch grammar: "<backbone>" (ULDL/CE/LS classifier), "uapl_<backbone>" (patch attention),
"va_<backbone>" (valence-arousal regressor), with backbone in BACKBONES.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ml.models.backbones import BACKBONES, Backbone, build_backbone
from ml.models.uapl import UAPLNet
from ml.models.uldl import AdaptiveSimNet, ExpressionNet
from ml.models.va import VARegressor

__all__ = ["BACKBONES", "AdaptiveSimNet", "Backbone", "ExpressionNet", "UAPLNet", "VARegressor",
           "build_backbone", "build_model", "parse_arch"]

PREFIXES = ("uapl_", "va_")


def parse_arch(arch: str) -> tuple[str, str]:
    """"uapl_resnet18" -> ("uapl", "resnet18"); "resnet18" -> ("classifier", "resnet18")."""
    kind = "classifier"
    for prefix in PREFIXES:
        if arch.startswith(prefix):
            kind, arch = prefix[:-1], arch[len(prefix):]
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; backbones: {', '.join(BACKBONES)} "
                         f"(optionally prefixed by {' or '.join(PREFIXES)})")
    return kind, arch


def build_model(arch: str, num_classes: int = 0, *, pretrained: str | Path | None = None,
                grid: int | None = None) -> nn.Module:
    """A fresh network for `arch`; num_classes is ignored for "va_" regressors, grid is UAPL's patch grid."""
    kind, backbone_name = parse_arch(arch)
    backbone = build_backbone(backbone_name, pretrained)
    if kind == "va":
        return VARegressor(backbone)
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    if kind == "uapl":
        return UAPLNet(backbone, num_classes, **({} if grid is None else {"grid": grid}))
    return ExpressionNet(backbone, num_classes)
