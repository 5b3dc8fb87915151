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
