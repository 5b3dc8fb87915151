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
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from study.errors import BrokerUnavailable, InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from study.jobs import broker_check, enqueue_model_validation
from study.models import ModelVersion
from study.services.model_figures import FIGURE_FIELDS, model_figures_store

logger = logging.getLogger(__name__)

def max_checkpoint_bytes() -> int:
    """The size limit of a model file (settings.MAX_CHECKPOINT_BYTES, 2 GiB by default), read at each use."""
    return int(getattr(settings, "MAX_CHECKPOINT_BYTES", 2 * 1024 ** 3))


def _size_check(size: int, name: str) -> None:
    if size == 0:
        raise InvalidInput(f"{name}: the file is empty")
    if size > max_checkpoint_bytes():
        raise PayloadTooLarge(f"{name}: {size / 1e6:.0f} MB is over the {max_checkpoint_bytes() / 1e6:.0f} MB limit "
                              "for a model file")


def _sha256(handle: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    handle.seek(0)
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    handle.seek(0)
    return digest.hexdigest(), size


def _cheap_checks(handle: BinaryIO, size: int, name: str) -> None:
    _size_check(size, name)
    if not zipfile.is_zipfile(handle):
        raise InvalidInput(f"{name}: not a PyTorch checkpoint (torch.save writes a zip archive; this is not one)")
    handle.seek(0)


def checkpoint_precheck(*, handle: BinaryIO, filename: str) -> None:
    """The cheap checks alone (no database): empty, too large, or not a torch.save zip archive."""
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    _cheap_checks(handle, size, filename)


def model_version_register(*, name: str, handle: BinaryIO, owner, filename: str = "checkpoint.pt", notes: str = "",
                           is_demo: bool = False, is_public: bool = False, lambda_export: BinaryIO | None = None,
                           sidecar: dict | None = None, user=None, training_data: str = "",
                           training_domain: str = "", share_with: list[str] | None = None,
                           figure4_image: BinaryIO | None = None,
                           figure4_gallery: BinaryIO | None = None) -> ModelVersion:
    """Store a checkpoint as a pending ModelVersion of `owner` and enqueue its validation (after commit).

    sidecar: for a TorchScript or ONNX file, its description (ml/foreign.py: format, classes in output
    order, input size, channels, normalisation, logits or probabilities, training data, licence). It is
    stored beside the file as `<file>.json`, where the worker's loader finds it; the worker validates it.
    lambda_export, figure4_image, figure4_gallery: the training run's figures (services/model_figures.py).
    A sidecar whose outputs are "valence_arousal" describes a VA regressor (ml.foreign).
    training_data, training_domain: what the model was trained on, when the file does not say (or to
    override it). share_with: usernames of researchers who may also see and run it (checked before storing).
    """
    if owner is None or not getattr(owner, "pk", None):
        raise InvalidInput("a model needs an owner (a researcher account)")
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a model needs a name of 1 to 100 characters")
    sha256, size = _sha256(handle)
    if sidecar is not None:
        _sidecar_cheap_checks(sidecar)
    if sidecar is not None and str(sidecar.get("format")).lower() == "onnx":
        _size_check(size, filename)  # ONNX is protobuf, not a zip archive: the worker checks the rest
    else:
        _cheap_checks(handle, size, filename)
    if training_domain not in ("", "photo", "synthetic"):
        raise InvalidInput("the training domain must be 'photo' or 'synthetic' (or left empty)")
    readers = _researchers_named(share_with or [], owner)
    broker_check()  # validation needs a worker: with the broker down, refuse (503) before storing anything
    with transaction.atomic():
        # A rejected (invalid) registration never blocks trying again with the same file or name.
        mine = ModelVersion.objects.filter(owner=owner)
        for stale in mine.select_for_update().filter(status=ModelVersion.Status.INVALID, sha256=sha256):
            model_version_remove(model_version=stale)
        for stale in mine.filter(status=ModelVersion.Status.INVALID, name=name):
            model_version_remove(model_version=stale)
        existing = mine.filter(sha256=sha256).first()
        if existing:
            raise InvalidInput(f"this checkpoint is already registered as {existing.name!r}")
        if mine.filter(name=name).exists():
            raise InvalidInput(f"you already have a model named {name!r}; choose another name")
        model_version = ModelVersion(name=name, sha256=sha256, notes=notes, is_demo=is_demo, is_public=is_public,
                                     owner=owner, created_by=user or owner, training_data=training_data.strip()[:200],
                                     training_domain=training_domain)
        model_figures_store(model_version=model_version, lambda_export=lambda_export, figure4_image=figure4_image,
                            figure4_gallery=figure4_gallery)  # checked first: a bad file stores nothing
        model_version.checkpoint.save(f"{sha256}.pt", File(handle), save=False)
        if sidecar is not None:
            storage = model_version.checkpoint.storage
            storage.save(model_version.checkpoint.name + ".json", ContentFile(json.dumps(sidecar).encode()))
        try:
            model_version.save()
            model_version.shared_with.set(readers)
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
            model_version_remove(model_version=model_version)
        raise BrokerUnavailable(f"the checkpoint could not be queued for validation ({exc.__class__.__name__}); "
                                + ("nothing was stored" if forget_on_failure else "it stays pending")) from None


def model_version_mark_validating(*, model_version_id: int) -> None:
    """The worker has picked the model up (the detail page says so while it loads and test-runs it)."""
    ModelVersion.objects.filter(pk=model_version_id, status=ModelVersion.Status.PENDING).update(
        validation_started_at=timezone.now())


def model_version_apply_validation(*, model_version_id: int, info: dict | None, error: str | None) -> None:
    """Record what the worker found: metadata of a valid checkpoint, or the reason it was rejected."""
    with transaction.atomic():
        model_version = ModelVersion.objects.select_for_update().filter(pk=model_version_id).first()
        if model_version is None:
            return
        if error is not None:
            # the stored name is the sha256: a researcher knows it as "the uploaded file"
            error = _without_server_paths(error).replace(f"{model_version.sha256}.pt.json", "the description") \
                .replace(f"{model_version.sha256}.pt", "the uploaded file")
            _remove_files(model_version)
            model_version.checkpoint = ""
            model_version.status = ModelVersion.Status.INVALID
            model_version.validation_error = error
            model_version.save(update_fields=["checkpoint", "status", "validation_error"])
            return
        model_version.arch = str(info.get("arch", ""))[:64]
        model_version.kind = ModelVersion.Kind.VA if info.get("kind") == "va" else ModelVersion.Kind.EXPRESSION
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


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[^/\s'\"():,]+)+/?")  # the servers are POSIX


def _without_server_paths(message: str) -> str:
    """A worker's error names files by absolute path; a researcher sees only the file name."""
    return _ABSOLUTE_PATH.sub(lambda match: Path(match.group(0).rstrip("/")).name or "<path>", message)


def model_version_delete(*, model_version: ModelVersion, by) -> None:
    """The owner removes their model, its predictions (in every study that ran it) and its files."""
    if by is None or model_version.owner_id != by.pk:
        raise PermissionDenied(f"only {model_version.owner} (the owner) can remove {model_version.name!r}")
    model_version_remove(model_version=model_version)


def model_version_remove(*, model_version: ModelVersion) -> None:
    """Remove a model, its predictions and its files, unconditionally (rejected registrations, the CLI)."""
    _remove_files(model_version)
    model_version.delete()


def _researchers_named(usernames: list[str], owner) -> list:
    """The active accounts named (the owner left out); InvalidInput naming any unknown one."""
    User = get_user_model()
    wanted = {name.strip() for name in usernames if name.strip()} - {owner.get_username()}
    users = list(User.objects.filter(**{f"{User.USERNAME_FIELD}__in": wanted}, is_active=True))
    unknown = sorted(wanted - {user.get_username() for user in users})
    if unknown:
        raise InvalidInput(f"no researcher named {', '.join(unknown)}; nothing was changed")
    return users


def model_version_share(*, model_version: ModelVersion, by, usernames: list[str], public: bool) -> ModelVersion:
    """The owner sets who else may see and run the model: named researchers, or everyone (public)."""
    if by is None or model_version.owner_id != by.pk:
        raise PermissionDenied(f"only {model_version.owner} (the owner) can share {model_version.name!r}")
    users = _researchers_named(usernames, by)
    with transaction.atomic():
        model_version.is_public = public
        model_version.save(update_fields=["is_public"])
        model_version.shared_with.set(users)
    return model_version


def model_version_get(*, name: str, owner: str | None = None) -> ModelVersion:
    """A model by name (names are unique per owner; `owner` is a username, needed when two owners share a name)."""
    candidates = ModelVersion.objects.filter(name=name).select_related("owner")
    if owner:
        candidates = candidates.filter(**{f"owner__{get_user_model().USERNAME_FIELD}": owner})
    found = list(candidates[:10])
    if not found:
        raise NotFound(f"no model named {name!r}{f' owned by {owner!r}' if owner else ''}; "
                       "register it with `manage.py register_model`")
    if len(found) > 1:
        owners = ", ".join(sorted(m.owner.get_username() for m in found))
        raise InvalidInput(f"several models are named {name!r} (owners: {owners}); say which with --owner")
    return found[0]


def _remove_files(model_version: ModelVersion) -> None:
    for field in (model_version.checkpoint, *(getattr(model_version, name) for name in FIGURE_FIELDS)):
        # Files are content-addressed: another owner's registration of the same bytes keeps them alive.
        if field and field.name and not ModelVersion.objects.exclude(pk=model_version.pk).filter(
                Q(checkpoint=field.name) | Q(lambda_export=field.name) | Q(figure4_image=field.name)
                | Q(figure4_gallery=field.name)).exists():
            try:
                field.storage.delete(field.name)
                if field is model_version.checkpoint:
                    field.storage.delete(field.name + ".json")  # a TorchScript/ONNX sidecar, if any
            except OSError:
                logger.warning("could not remove %s", field.name)


SIDECAR_OUTPUTS = ("logits", "probabilities", "valence_arousal")  # ml.foreign.OUTPUTS (no torch here)


def _sidecar_cheap_checks(sidecar: object) -> None:
    """What the web side can check without torch; the worker validates the rest (ml.foreign)."""
    if not isinstance(sidecar, dict):
        raise InvalidInput("the sidecar must be a JSON object")
    if str(sidecar.get("format", "")).lower() not in ("torchscript", "onnx"):
        raise InvalidInput("the sidecar's 'format' must be 'torchscript' or 'onnx'")
    outputs = str(sidecar.get("outputs", "logits")).lower()
    if outputs not in SIDECAR_OUTPUTS:
        raise InvalidInput(f"the sidecar's 'outputs' must be one of {', '.join(SIDECAR_OUTPUTS)}")
    classes = sidecar.get("classes")
    if outputs == "valence_arousal":
        if classes not in (None, [], ["valence", "arousal"]):
            raise InvalidInput("a valence/arousal model needs no class names (its outputs are valence, arousal)")
    elif not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise InvalidInput("the sidecar's 'classes' must list the class names in output order")
    if len(json.dumps(sidecar)) > 20_000:
        raise InvalidInput("the sidecar is too large")


def checkpoint_path(model_version: ModelVersion) -> Path:
    """A local file holding the checkpoint, for torch to load. With media on a shared object store (S3, several
    machines) the worker copies it once into MODEL_CACHE_DIR; the name is the sha256, so a copy never goes stale."""
    try:
        return Path(model_version.checkpoint.path)
    except NotImplementedError:  # storage without local files (django-storages' S3Storage)
        pass
    cache = Path(settings.MODEL_CACHE_DIR)
    local = cache / f"{model_version.sha256}.pt"
    if not local.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = local.with_suffix(f".part{os.getpid()}")
        with model_version.checkpoint.open("rb") as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(partial, local)
    sidecar_name = model_version.checkpoint.name + ".json"  # a TorchScript/ONNX description goes with it
    local_sidecar = Path(f"{local}.json")
    if not local_sidecar.is_file() and model_version.checkpoint.storage.exists(sidecar_name):
        with model_version.checkpoint.storage.open(sidecar_name, "rb") as source:
            local_sidecar.write_bytes(source.read())
    return local
