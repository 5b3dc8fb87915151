"""Model registry writes: store a checkpoint content-addressed, validate it in a worker, record the outcome.

The web process never imports torch, so it only does cheap checks (size, zip magic: torch.save writes a zip
archive) and leaves the real check, loading the checkpoint with ml's Predictor, to a Celery task. A
rejected checkpoint loses its file at once; its row stays as `invalid` with the reason until it is
dismissed or the same file/name is registered again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import zipfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction

from study.errors import BrokerUnavailable, InvalidInput, NotFound
from study.jobs import broker_check, enqueue_model_validation
from study.models import ModelVersion

logger = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = getattr(settings, "MAX_CHECKPOINT_BYTES", 2 * 1024 ** 3)


def _sha256(handle: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    handle.seek(0)
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    handle.seek(0)
    return digest.hexdigest(), size


def _cheap_checks(handle: BinaryIO, size: int, name: str) -> None:
    if size == 0:
        raise InvalidInput(f"{name}: the file is empty")
    if size > MAX_CHECKPOINT_BYTES:
        raise InvalidInput(f"{name}: {size / 1e6:.0f} MB is over the {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB limit")
    if not zipfile.is_zipfile(handle):
        raise InvalidInput(f"{name}: not a PyTorch checkpoint (torch.save writes a zip archive; this is not one)")
    handle.seek(0)


def checkpoint_precheck(*, handle: BinaryIO, filename: str) -> None:
    """The cheap checks alone (no database): empty, too large, or not a torch.save zip archive."""
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    _cheap_checks(handle, size, filename)


def model_version_register(*, name: str, handle: BinaryIO, filename: str = "checkpoint.pt", notes: str = "",
                           is_demo: bool = False, lambda_export: BinaryIO | None = None,
                           sidecar: dict | None = None, user=None) -> ModelVersion:
    """Store a checkpoint as a pending ModelVersion and enqueue its validation (after commit).

    sidecar: for a TorchScript or ONNX file, its description (ml/foreign.py: format, classes in output
    order, input size, channels, normalisation, logits or probabilities, training data, licence). It is
    stored beside the file as `<file>.json`, where the worker's loader finds it; the worker validates it.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a model needs a name of 1 to 100 characters")
    sha256, size = _sha256(handle)
    if sidecar is not None:
        _sidecar_cheap_checks(sidecar)
    if sidecar is not None and str(sidecar.get("format")).lower() == "onnx":
        if size == 0 or size > MAX_CHECKPOINT_BYTES:
            raise InvalidInput(f"{filename}: empty or over the {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB limit")
    else:
        _cheap_checks(handle, size, filename)
    broker_check()  # validation needs a worker: with the broker down, refuse (503) before storing anything
    with transaction.atomic():
        # A rejected (invalid) registration never blocks trying again with the same file or name.
        for stale in ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.INVALID,
                                                                      sha256=sha256):
            model_version_delete(model_version=stale)
        ModelVersion.objects.filter(status=ModelVersion.Status.INVALID, name=name).delete()
        existing = ModelVersion.objects.filter(sha256=sha256).first()
        if existing:
            raise InvalidInput(f"this checkpoint is already registered as {existing.name!r}")
        if ModelVersion.objects.filter(name=name).exists():
            raise InvalidInput(f"a model named {name!r} already exists; choose another name")
        model_version = ModelVersion(name=name, sha256=sha256, notes=notes, is_demo=is_demo, created_by=user)
        model_version.checkpoint.save(f"{sha256}.pt", File(handle), save=False)
        if sidecar is not None:
            storage = model_version.checkpoint.storage
            storage.save(model_version.checkpoint.name + ".json", ContentFile(json.dumps(sidecar).encode()))
        if lambda_export is not None:
            model_version.lambda_export.save(f"{sha256}_lambdas.csv", File(lambda_export), save=False)
        try:
            model_version.save()
        except Exception:
            _remove_files(model_version)
            raise
        transaction.on_commit(lambda: _enqueue_validation(model_version.pk, forget_on_failure=True))
    return model_version


def model_version_revalidate(*, model_version: ModelVersion) -> None:
    """Queue validation again for a model left pending (say, its worker died before answering)."""
    if model_version.status == ModelVersion.Status.PENDING:
        transaction.on_commit(lambda: _enqueue_validation(model_version.pk))


def _enqueue_validation(model_version_id: int, *, forget_on_failure: bool = False) -> None:
    """Publish the validation task; if the broker fails now, a new registration is undone (row and file)."""
    try:
        enqueue_model_validation(model_version_id)
    except Exception as exc:  # kombu raises transport-specific errors
        model_version = ModelVersion.objects.filter(pk=model_version_id).first()
        if forget_on_failure and model_version is not None:
            model_version_delete(model_version=model_version)
        raise BrokerUnavailable(f"the checkpoint could not be queued for validation ({exc.__class__.__name__}); "
                                + ("nothing was stored" if forget_on_failure else "it stays pending")) from None


def model_version_apply_validation(*, model_version_id: int, info: dict | None, error: str | None) -> None:
    """Record what the worker found: metadata of a valid checkpoint, or the reason it was rejected."""
    with transaction.atomic():
        model_version = ModelVersion.objects.select_for_update().filter(pk=model_version_id).first()
        if model_version is None:
            return
        if error is not None:
            _remove_files(model_version)
            model_version.checkpoint = ""
            model_version.status = ModelVersion.Status.INVALID
            model_version.validation_error = error
            model_version.save(update_fields=["checkpoint", "status", "validation_error"])
            return
        model_version.arch = str(info.get("arch", ""))[:64]
        model_version.classes = list(info["classes"])
        model_version.input_size = int(info.get("input_size") or 112)
        model_version.normalization = info.get("normalization") or {}
        model_version.metrics = _json_safe(info.get("metrics") or {})
        model_version.training_data = model_version.training_data or str(info.get("training_data") or "")[:200]
        model_version.training_domain = model_version.training_domain or str(info.get("training_domain") or "")[:10]
        model_version.status = ModelVersion.Status.VALID
        model_version.validation_error = ""
        model_version.save()


def _json_safe(value):
    """NaN and infinity are not JSON (a run without label noise has no λ AUROC): store them as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def model_version_delete(*, model_version: ModelVersion) -> None:
    """Remove a model, its predictions and its files."""
    _remove_files(model_version)
    model_version.delete()


def model_version_get(*, name: str) -> ModelVersion:
    model_version = ModelVersion.objects.filter(name=name).first()
    if model_version is None:
        raise NotFound(f"no model named {name!r}; register it with `manage.py register_model`")
    return model_version


def _remove_files(model_version: ModelVersion) -> None:
    for field in (model_version.checkpoint, model_version.lambda_export):
        if field and field.name:
            try:
                field.storage.delete(field.name)
                if field is model_version.checkpoint:
                    field.storage.delete(field.name + ".json")  # a TorchScript/ONNX sidecar, if any
            except OSError:
                logger.warning("could not remove %s", field.name)


def _sidecar_cheap_checks(sidecar: object) -> None:
    """What the web side can check without torch; the worker validates the rest (ml.foreign)."""
    if not isinstance(sidecar, dict):
        raise InvalidInput("the sidecar must be a JSON object")
    if str(sidecar.get("format", "")).lower() not in ("torchscript", "onnx"):
        raise InvalidInput("the sidecar's 'format' must be 'torchscript' or 'onnx'")
    classes = sidecar.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise InvalidInput("the sidecar's 'classes' must list the class names in output order")
    if len(json.dumps(sidecar)) > 20_000:
        raise InvalidInput("the sidecar is too large")


def checkpoint_path(model_version: ModelVersion) -> Path:
    return Path(model_version.checkpoint.path)
