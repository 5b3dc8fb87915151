"""Inference on PIL images from a checkpoint: the narrow boundary the web side (study/tasks.py) uses.

    predictor = Predictor.from_checkpoint("var/models/demo.pt")      # raises CheckpointError if unusable
    probs = predictor.predict([pil_image, ...])                       # (N, C) float32, rows sum to 1
    predictor.classes                                                 # class names in column order

`get_predictor(path)` caches one loaded model per process, keyed by the file's sha256, so a worker loads a
checkpoint once even when several ModelVersions point at copies of the same file.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml.checkpoints import CheckpointError, build_model_from_checkpoint, load_checkpoint

__all__ = ["CheckpointError", "Predictor", "VAPredictor", "get_predictor", "load_predictor", "resolve_device",
           "file_sha256"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """None -> $MODEL_DEVICE if set; "", "auto" -> cuda if available else cpu; else e.g. "cuda:1", "cpu"."""
    if device is None:
        device = os.environ.get("MODEL_DEVICE")
    if device is None or str(device).strip().lower() in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(str(device).strip())
    except RuntimeError as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


class _ImageModel:
    """Shared loading and preprocessing: resize to input_size (bilinear), scale to [0, 1], normalise."""

    task = "expression"

    def __init__(self, model: torch.nn.Module, ckpt: dict, device: torch.device):
        self.device = device
        self.arch: str = ckpt["arch"]
        self.input_size: int = ckpt["input_size"]
        self.normalization: dict = ckpt["normalization"]
        self.metrics: dict = dict(ckpt.get("metrics") or {})
        self.epoch = ckpt.get("epoch")
        self.channels: int = ckpt.get("channels", 3)
        dataset = (ckpt.get("args") or {}).get("dataset") if isinstance(ckpt.get("args"), dict) else None
        self.training_data: str = ckpt.get("training_data") or (
            "EmoStudy synthetic faces" if dataset == "synthetic" else str(dataset or ""))
        # "synthetic" or "photo": pages warn when a model meets images of the other kind
        self.training_domain: str = ckpt.get("training_domain") or (
            "synthetic" if dataset == "synthetic" else "photo" if dataset else "")
        self._mean = torch.tensor(self.normalization["mean"], device=device).view(1, self.channels, 1, 1)
        self._std = torch.tensor(self.normalization["std"], device=device).view(1, self.channels, 1, 1)
        self.model = model.to(device).to(memory_format=torch.channels_last).eval()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None):
        """Load a checkpoint; CheckpointError if it is unreadable, truncated, foreign or incomplete."""
        ckpt = load_checkpoint(path, task=cls.task)
        return cls(build_model_from_checkpoint(ckpt), ckpt, resolve_device(device))

    def _to_array(self, image) -> np.ndarray:
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected PIL images or uint8 arrays, got {type(image).__name__}")
        image = image.convert("L" if self.channels == 1 else "RGB")
        if image.size != (self.input_size, self.input_size):
            image = image.resize((self.input_size, self.input_size), Image.BILINEAR)
        arr = np.asarray(image, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr

    def _batches(self, images: Sequence, batch_size: int):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for start in range(0, len(images), batch_size):
            arr = np.stack([self._to_array(im) for im in images[start:start + batch_size]])
            x = torch.from_numpy(arr).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            yield ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)


class Predictor(_ImageModel):
    """An expression classifier: `.classes`, `.input_size`, `.arch`, `.predict(images) -> (N, C)`."""

    def __init__(self, model, ckpt, device):
        super().__init__(model, ckpt, device)
        self.classes: list[str] = list(ckpt["classes"])

    def predict(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        """PIL images (any size/mode) -> (N, C) float32 softmax probabilities, columns in `.classes` order."""
        out = [np.zeros((0, len(self.classes)), dtype=np.float32)]
        with torch.inference_mode():
            for x in self._batches(images, batch_size):
                out_ = self.model(x)
                logits = out_[-1] if isinstance(out_, (tuple, list)) else out_
                out.append(logits.float().softmax(dim=1).cpu().numpy())
        return np.concatenate(out)

    has_va = False

    def predict_va(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        raise CheckpointError(f"{self.arch} has no valence-arousal head; load a VA checkpoint with VAPredictor")


class VAPredictor(_ImageModel):
    """A valence-arousal regressor checkpoint (arch "va_*"): `.predict_va(images) -> (N, 2)` in [-1, 1]."""

    task = "va"
    has_va = True
    classes = ["valence", "arousal"]  # its two outputs, in order (what the registry shows)

    def predict(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        raise CheckpointError(f"{self.arch} is a valence/arousal regressor; it predicts no emotion classes")

    def predict_va(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        out = [np.zeros((0, 2), dtype=np.float32)]
        with torch.inference_mode():
            for x in self._batches(images, batch_size):
                out.append(self.model(x).float().cpu().numpy())
        return np.concatenate(out)


_SHA_CACHE: dict[tuple, str] = {}
_PREDICTORS: dict[tuple[str, str], Predictor] = {}
_LOCK = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so repeated lookups do not re-read large files."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def get_predictor(path: str | os.PathLike, device: str | torch.device | None = None) -> Predictor:
    """A Predictor shared per process, keyed by the checkpoint's sha256 and the device."""
    resolved = resolve_device(device)
    key = (file_sha256(path), str(resolved))
    with _LOCK:
        if key not in _PREDICTORS:
            _PREDICTORS[key] = load_predictor(path, device=resolved)
        return _PREDICTORS[key]


def load_predictor(path: str | os.PathLike, device: str | torch.device | None = None):
    """An EmoStudy checkpoint (an expression classifier or, task "va", a VA regressor), or a TorchScript/ONNX
    file described by its sidecar `<file>.json` (ml.foreign). Each is run once on a grey test face, so a model
    that loads but cannot run fails here. `.task` says which kind it is ("expression" or "va")."""
    from ml.foreign import ForeignPredictor, read_sidecar

    spec = read_sidecar(path)
    if spec is not None:
        model = ForeignPredictor(path, spec, device=device)
    else:
        ckpt = load_checkpoint(path, task=None)
        cls = VAPredictor if ckpt["task"] == "va" else Predictor
        model = cls(build_model_from_checkpoint(ckpt), ckpt, resolve_device(device))
    test_face = [Image.new("RGB", (model.input_size, model.input_size), (128, 128, 128))]
    out = model.predict_va(test_face) if model.has_va else model.predict(test_face)  # fail early
    if not np.isfinite(out).all():
        raise CheckpointError("the model's output holds NaN or infinite values on a test image")
    return model
