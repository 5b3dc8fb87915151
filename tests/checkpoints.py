"""Tiny real checkpoints for web-side tests (built with ml's own code; untrained but loadable)."""
from pathlib import Path

RAFDB_BASIC7 = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]


def write_tiny_checkpoint(path: Path, classes=RAFDB_BASIC7, input_size: int = 32, drop=(), arch: str = "resnet18_small",
                          **overrides) -> Path:
    import torch

    from ml.checkpoints import save_checkpoint
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(classes)).eval()
    payload = {"task": "expression", "model": model.state_dict(), "arch": arch, "classes": list(classes),
               "input_size": input_size, "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}, "epoch": 1,
               "metrics": {"test_acc": 0.5}, "args": {}}
    payload.update(overrides)
    for key in drop:
        payload.pop(key)
    return save_checkpoint(path, payload)


def write_tiny_va_checkpoint(path: Path, input_size: int = 32, arch: str = "va_resnet18_small",
                             training_domain: str = "synthetic") -> Path:
    """An untrained VA regressor checkpoint (ml.va's format: task "va", tanh head, outputs in [-1, 1])."""
    import torch

    from ml.checkpoints import save_checkpoint
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model(arch).eval()
    return save_checkpoint(path, {
        "task": "va", "model": model.state_dict(), "arch": arch, "input_size": input_size,
        "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}, "epoch": 1, "metrics": {"ccc_valence": 0.5},
        "args": {"dataset": "synthetic"}, "training_domain": training_domain})


def write_tiny_torchscript(path: Path, outputs: int = 3, input_size: int = 16, channels: int = 3,
                           va: bool = False) -> Path:
    """A TorchScript file (torch.jit.save) of a tiny network: (N, C, H, W) -> (N, outputs) logits, or with
    va=True (N, 2) valence/arousal through tanh."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(4)
            self.head = nn.Linear(channels * 16, outputs)
            self.squash = nn.Tanh() if va else nn.Identity()

        def forward(self, x):
            return self.squash(self.head(torch.flatten(self.pool(x), 1)))

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny().eval()), str(path))
    return path
