"""Bring your own model: TorchScript and ONNX files described by a small sidecar JSON.

    model.onnx + model.onnx.json        (the sidecar sits beside the file: `<file name>.json`)
    {
      "format": "onnx",                            # or "torchscript" (torch.jit.save)
      "classes": ["angry", "disgust", ...],        # names in output order (mapped to study labels by name)
      "input_size": 64,                            # square side in pixels (images are resized to it)
      "channels": "grayscale",                     # or "rgb"
      "mean": [0.5], "std": [0.5],                 # on pixels scaled to [0, 1]; one value per channel
      "outputs": "logits",                         # or "probabilities", or "valence_arousal" (see below)
      "training_data": "FER2013",                  # shown beside every prediction
      "training_domain": "photo",                  # or "synthetic"; pages warn on a mismatch
      "licence": "MIT"
    }

The model takes (N, C, H, W) float32 and returns (N, len(classes)) (a tuple/list: its last element).
ONNX needs the optional extra `onnx` (onnxruntime). Loaded models behave like ml.predictor.Predictor.

A valence/arousal regressor says `"outputs": "valence_arousal"` and needs no class names: it returns
(N, 2), valence then arousal, on the usual [-1, 1] scale (values outside are clipped). It behaves like
ml.predictor.VAPredictor (`.predict_va`); the demo page shows its numbers beside each face.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml.checkpoints import CheckpointError

__all__ = ["FORMATS", "OUTPUTS", "VA_OUTPUTS", "ForeignPredictor", "read_sidecar", "sidecar_path", "validate_sidecar"]

FORMATS = ("torchscript", "onnx")
OUTPUTS = ("logits", "probabilities", "valence_arousal")
VA_OUTPUTS = ("valence", "arousal")


def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def validate_sidecar(raw: object, where: str = "sidecar") -> dict:
    """Check and normalise a sidecar dict; CheckpointError naming the first problem."""
    def need(condition: bool, problem: str) -> None:
        if not condition:
            raise CheckpointError(f"{where}: {problem}")

    need(isinstance(raw, dict), "must be a JSON object")
    fmt = str(raw.get("format", "")).lower()
    need(fmt in FORMATS, f"'format' must be one of {', '.join(FORMATS)} (got {raw.get('format')!r})")
    outputs = str(raw.get("outputs", "logits")).lower()
    need(outputs in OUTPUTS, f"'outputs' must be one of {', '.join(OUTPUTS)}")
    classes = raw.get("classes")
    if outputs == "valence_arousal":  # a regressor: its two outputs have fixed names
        need(classes in (None, [], list(VA_OUTPUTS)), "a valence/arousal model's 'classes' must be "
             "[\"valence\", \"arousal\"] or left out")
        classes = list(VA_OUTPUTS)
    need(isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) and c.strip() for c in classes),
         "'classes' must list at least 2 class names in output order")
    need(len(set(classes)) == len(classes), "duplicate class names")
    size = raw.get("input_size")
    need(isinstance(size, int) and not isinstance(size, bool) and 8 <= size <= 4096, "'input_size' must be 8..4096")
    channels = str(raw.get("channels", "rgb")).lower()
    need(channels in ("rgb", "grayscale"), "'channels' must be 'rgb' or 'grayscale'")
    n = 3 if channels == "rgb" else 1
    mean, std = raw.get("mean", [0.0] * n), raw.get("std", [1.0] * n)
    for name, values in (("mean", mean), ("std", std)):
        need(isinstance(values, list) and len(values) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values),
            f"'{name}' must list {n} number(s) for {channels} input")
    need(all(v > 0 for v in std), "'std' values must be positive")
    domain = str(raw.get("training_domain", "")).lower()
    need(domain in ("", "photo", "synthetic"), "'training_domain' must be 'photo' or 'synthetic'")
    return {"format": fmt, "classes": [c.strip() for c in classes], "input_size": size, "channels": channels,
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "outputs": outputs,
            "training_data": str(raw.get("training_data", ""))[:200], "training_domain": domain,
            "licence": str(raw.get("licence", raw.get("license", "")))[:200]}


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The validated sidecar beside `path`, or None if there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{side}: not readable JSON ({exc})") from None
    return validate_sidecar(raw, where=str(side))


class ForeignPredictor:
    """A TorchScript or ONNX classifier behind the Predictor interface (`.classes`, `.predict`), or a
    valence/arousal regressor behind the VAPredictor one (`.predict_va`) when the sidecar says so."""

    def __init__(self, path: str | os.PathLike, spec: dict, device=None):
        import torch

        from ml.predictor import resolve_device

        self.path, self.spec = Path(path), spec
        self.has_va = spec["outputs"] == "valence_arousal"
        self.task = "va" if self.has_va else "expression"
        self.arch = spec["format"]
        self.classes: list[str] = list(spec["classes"])
        self.input_size: int = spec["input_size"]
        self.channels = 1 if spec["channels"] == "grayscale" else 3
        self.normalization = {"mean": spec["mean"], "std": spec["std"]}
        self.metrics = {"licence": spec["licence"], "format": spec["format"], "outputs": spec["outputs"]}
        self.training_data, self.training_domain = spec["training_data"], spec["training_domain"]
        self.device = resolve_device(device)
        self._mean = np.asarray(spec["mean"], np.float32).reshape(1, -1, 1, 1)
        self._std = np.asarray(spec["std"], np.float32).reshape(1, -1, 1, 1)
        if spec["format"] == "torchscript":
            try:
                self._module = torch.jit.load(str(path), map_location=self.device).eval()
            except Exception as exc:  # a non-TorchScript file raises many kinds of errors
                raise CheckpointError(f"{path}: not a loadable TorchScript file ({exc.__class__.__name__}: "
                                      f"{str(exc)[:200]})") from None
        else:
            try:
                import onnxruntime as ort
            except ImportError:
                raise CheckpointError("ONNX models need onnxruntime: pip install 'emostudy[onnx]'") from None
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device.type == "cuda" \
                else ["CPUExecutionProvider"]
            try:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                self._session = ort.InferenceSession(str(path), options, providers=[
                    p for p in providers if p in ort.get_available_providers()])
            except Exception as exc:
                raise CheckpointError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__}: "
                                      f"{str(exc)[:200]})") from None
            self._input_name = self._session.get_inputs()[0].name

    def _array(self, images: Sequence) -> np.ndarray:
        mode = "L" if self.channels == 1 else "RGB"
        arrs = []
        for image in images:
            if isinstance(image, np.ndarray):
                image = Image.fromarray(image)
            image = image.convert(mode).resize((self.input_size, self.input_size), Image.BILINEAR)
            arr = np.asarray(image, dtype=np.float32) / 255.0
            arrs.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        return ((np.stack(arrs) - self._mean) / self._std).astype(np.float32)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if self.spec["format"] == "onnx":
            return np.asarray(self._session.run(None, {self._input_name: x})[0], dtype=np.float32)
        import torch

        with torch.inference_mode():
            out = self._module(torch.from_numpy(x).to(self.device))
        out = out[-1] if isinstance(out, (tuple, list)) else out
        return out.float().cpu().numpy()

    def _outputs(self, images: Sequence, batch_size: int):
        """Each batch's raw (B, len(classes)) output; CheckpointError naming the mismatch if the shape is wrong."""
        for start in range(0, len(images), batch_size):
            x = self._array(images[start:start + batch_size])
            y = self._forward(x)
            if y.ndim != 2 or y.shape != (len(x), len(self.classes)):
                got = f"{y.shape[-1]} values per image" if y.ndim == 2 and len(y) == len(x) else \
                    f"an output of shape {tuple(y.shape)} for {len(x)} image(s)"
                said = ("valence and arousal (2 values)" if self.has_va else
                        f"{len(self.classes)} class names ({', '.join(self.classes)})")
                raise CheckpointError(f"the model gives {got}, but its description lists {said}: "
                                      "list one class name per output, in output order")
            if not np.isfinite(y).all():
                raise CheckpointError("the model's output holds NaN or infinite values on a test image")
            yield y

    def predict_va(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        """(N, 2) valence, arousal in [-1, 1]; CheckpointError for a classifier."""
        if not self.has_va:
            raise CheckpointError(f"{self.path.name} is a classifier, not a valence/arousal model")
        out = [np.zeros((0, 2), dtype=np.float32)]
        out += [np.clip(y, -1.0, 1.0).astype(np.float32) for y in self._outputs(images, batch_size)]
        return np.concatenate(out)

    def predict(self, images: Sequence, batch_size: int = 64) -> np.ndarray:
        """(N, C) probabilities in `.classes` order; CheckpointError if the model's output has the wrong shape."""
        if self.has_va:
            raise CheckpointError(f"{self.path.name} is a valence/arousal model; it predicts no emotion classes")
        out = [np.zeros((0, len(self.classes)), dtype=np.float32)]
        for y in self._outputs(images, batch_size):
            if self.spec["outputs"] == "logits":
                y = np.exp(y - y.max(axis=1, keepdims=True))
            else:
                y = np.clip(y, 0, None)
            out.append((y / np.maximum(y.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32))
        return np.concatenate(out)
