"""Checkpoint files: one dict of tensors and plain Python values, loadable with torch.load(weights_only=True).

Format (the shared contract), plus training-only keys in last.pt for --resume:
    {"format": 1, "task": "expression" | "va", "model": state_dict, "arch": str, "classes": [str, ...],
     "input_size": int, "normalization": {"mean": [C floats], "std": [C floats]}, "epoch": int,
     optional "channels": 3 (RGB, default) or 1 (grayscale, e.g. the FER2013 mini-Xception),
     optional "training_data": str (what the model was trained on; shown beside its predictions),
     "metrics": {...}, "args": {...}, "method": str,
     optional: "optimizer", "scheduler", "objective", "lambda_optimizer", "history"}
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "FORMAT_VERSION", "DEFAULT_NORMALIZATION", "plain", "save_checkpoint",
           "load_checkpoint", "build_model_from_checkpoint"]

FORMAT_VERSION = 1
# ULDL ref §2.2: pixels scaled to [-1, 1], i.e. (x/255 - 0.5) / 0.5 per channel.
DEFAULT_NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


class CheckpointError(ValueError):
    """The file is not a usable EmoStudy checkpoint (unreadable, truncated, foreign, or incomplete)."""


def plain(value: Any) -> Any:
    """Turn args/metrics into what weights_only=True accepts: str/int/float/bool/None, lists and dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves a half-written last.pt."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise CheckpointError(f"{path}: {problem}")


def load_checkpoint(path: str | Path, *, task: str | None = "expression") -> dict:
    """Load and validate a checkpoint on the CPU; raise CheckpointError with the reason if it is unusable.

    task: the kind the caller needs ("expression" needs class names, "va" a VA regressor), None for any.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, text file, pickle with code objects, ... all mean "not ours"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"[:500]) from None
    _require(isinstance(ckpt, dict), path, "not an EmoStudy checkpoint (top level is not a dict)")
    _require(isinstance(ckpt.get("model"), Mapping) and len(ckpt["model"]) > 0, path,
             "no model state dict under 'model'")
    _require(all(isinstance(v, torch.Tensor) for v in ckpt["model"].values()), path, "model state holds non-tensors")
    _require(isinstance(ckpt.get("arch"), str) and ckpt["arch"], path, "missing 'arch'")
    size = ckpt.get("input_size")
    _require(isinstance(size, int) and not isinstance(size, bool) and 8 <= size <= 4096, path,
             f"missing or invalid 'input_size' ({size!r})")
    channels = ckpt.setdefault("channels", 3)
    _require(channels in (1, 3) and not isinstance(channels, bool), path,
             f"invalid 'channels' ({channels!r}; 1 for grayscale or 3 for RGB)")
    norm = ckpt.get("normalization") or {k: v[:channels] for k, v in DEFAULT_NORMALIZATION.items()}
    _require(isinstance(norm, Mapping) and all(
        isinstance(norm.get(k), (list, tuple)) and len(norm[k]) == channels and all(
            isinstance(x, (int, float)) and math.isfinite(x) for x in norm[k]) for k in ("mean", "std"))
        and all(x > 0 for x in norm["std"]), path,
        f"invalid 'normalization' (needs {channels} means and {channels} positive stds)")
    ckpt["normalization"] = {"mean": [float(x) for x in norm["mean"]], "std": [float(x) for x in norm["std"]]}
    kind = ckpt.setdefault("task", "va" if ckpt["arch"].startswith("va_") else "expression")
    if task is not None and kind != task:
        raise CheckpointError(f"{path}: this is a {kind!r} checkpoint, not {task!r}")
    if kind == "expression":
        classes = ckpt.get("classes")
        _require(isinstance(classes, (list, tuple)) and len(classes) >= 2
                 and all(isinstance(c, str) and c.strip() for c in classes), path,
                 "missing class names under 'classes' (need at least 2 non-empty strings)")
        _require(len(set(classes)) == len(classes), path, "duplicate class names")
        ckpt["classes"] = list(classes)
    return ckpt


def build_model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network named by ckpt['arch'] and load its weights strictly."""
    from ml.models import build_model

    try:
        # UAPL's patch grid and patch mode have no weights of their own, so they come from the training
        # arguments (defaults: 3, and "pool" for checkpoints written before the mode existed).
        uapl = str(ckpt["arch"]).startswith("uapl_")
        train_args = ckpt.get("args") or {}
        grid = train_args.get("uapl_grid") if uapl else None
        patches = (train_args.get("uapl_patches") or "pool") if uapl else None
        model = build_model(ckpt["arch"], len(ckpt.get("classes") or []),
                            **({"grid": int(grid)} if grid else {}), **({"patches": patches} if patches else {}),
                            global_feature=bool(uapl and train_args.get("uapl_global_feature")),
                            whole_face_branch=bool(uapl and train_args.get("uapl_whole_face_branch")),
                            uniform_attention=bool(uapl and train_args.get("uapl_uniform_attention")))
    except ValueError as exc:
        raise CheckpointError(f"cannot rebuild arch {ckpt['arch']!r}: {exc}") from None
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit arch {ckpt['arch']!r}: {str(exc)[:300]}") from None
    return model
