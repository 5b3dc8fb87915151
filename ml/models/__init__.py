"""Model zoo. `build_model(arch, num_classes)` rebuilds any trained network from its `arch` string.

arch grammar: "<backbone>" (ULDL/CE/LS classifier), "uapl_<backbone>" (patch attention),
"va_<backbone>" (valence-arousal regressor), with backbone in BACKBONES; or a named architecture from
`architectures()`: the built-in "mini_xception" plus whatever installed packages declare under the
`emostudy.architectures` entry-point group (name = arch, value = a callable `factory(num_classes)`
returning an nn.Module whose forward gives logits or (features, logits)). See ml/README.md.
"""
from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from torch import nn

from ml.models.backbones import BACKBONES, Backbone, build_backbone
from ml.models.mini_xception import MiniXception
from ml.models.uapl import UAPLNet
from ml.models.uldl import AdaptiveSimNet, ExpressionNet
from ml.models.va import VARegressor

__all__ = ["BACKBONES", "AdaptiveSimNet", "Backbone", "ExpressionNet", "UAPLNet", "VARegressor",
           "MiniXception", "architectures", "build_backbone", "build_model", "parse_arch"]

ENTRY_POINT_GROUP = "emostudy.architectures"
BUILTIN_ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {"mini_xception": MiniXception}


def architectures() -> dict[str, Callable[[int], nn.Module]]:
    """Named architectures: built-ins, then entry points of installed packages (loaded on use)."""
    found: dict[str, Callable[[int], nn.Module]] = dict(BUILTIN_ARCHITECTURES)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, _lazy(ep))
    return found


def _lazy(ep: metadata.EntryPoint) -> Callable[[int], nn.Module]:
    def factory(num_classes: int) -> nn.Module:
        try:
            build = ep.load()
        except Exception as exc:  # a broken plug-in package must not take the registry down
            raise ValueError(f"architecture {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        model = build(num_classes)
        if not isinstance(model, nn.Module):
            raise ValueError(f"architecture {ep.name!r} returned {type(model).__name__}, not a torch nn.Module")
        return model
    return factory

PREFIXES = ("uapl_", "va_")


def parse_arch(arch: str) -> tuple[str, str]:
    """"uapl_resnet18" -> ("uapl", "resnet18"); "resnet18" -> ("classifier", "resnet18")."""
    kind = "classifier"
    for prefix in PREFIXES:
        if arch.startswith(prefix):
            kind, arch = prefix[:-1], arch[len(prefix):]
    if arch not in BACKBONES:
        named = ", ".join(sorted(architectures()))
        raise ValueError(f"unknown arch {arch!r}; backbones: {', '.join(BACKBONES)} "
                         f"(optionally prefixed by {' or '.join(PREFIXES)}); named architectures: {named} "
                         f"(packages add more through the {ENTRY_POINT_GROUP!r} entry point)")
    return kind, arch


def build_model(arch: str, num_classes: int = 0, *, pretrained: str | Path | None = None,
                grid: int | None = None, patches: str | None = None, global_feature: bool = False,
                whole_face_branch: bool = False, uniform_attention: bool = False) -> nn.Module:
    """A fresh network for `arch`; num_classes is ignored for "va_" regressors; grid and patches are UAPL's
    patch grid, patch mode (ml.models.uapl.PATCH_MODES), whether the whole face's feature joins the patches,
    whether a whole-face network of the same backbone runs beside the patches, and (an ablation) whether every
    patch weighs 1 instead of its attention (ml.models.uapl)."""
    named = architectures().get(arch)
    if named is not None:
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        return named(num_classes)
    kind, backbone_name = parse_arch(arch)
    backbone = build_backbone(backbone_name, pretrained)
    if kind == "va":
        return VARegressor(backbone)
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    if kind == "uapl":
        whole_face = (ExpressionNet(build_backbone(backbone_name, pretrained), num_classes)
                      if whole_face_branch else None)
        return UAPLNet(backbone, num_classes, **({} if grid is None else {"grid": grid}),
                       **({} if patches is None else {"patches": patches}), global_feature=global_feature,
                       whole_face=whole_face, uniform_attention=uniform_attention)
    return ExpressionNet(backbone, num_classes)
