"""A model's training-run figures: its λ export (lambdas.csv), its Figure 4 PNG and its Figure 4 gallery
(a zip of thumbnails with gallery.csv, written by `python -m ml.uncertainty --gallery`).

The comparison view's uncertainty tab shows them. Every file is checked here with Pillow and the csv module
(the web process never imports torch) before it is stored, content-addressed, under MEDIA_ROOT/models/.
Bad files are refused with a message and leave the model as it was.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from PIL import Image, UnidentifiedImageError

from study.errors import InvalidInput, PermissionDenied
from study.models import ModelVersion

MAX_LAMBDA_BYTES = 50 * 2 ** 20
MAX_FIGURE_BYTES = 20 * 2 ** 20
MAX_FIGURE_PIXELS = 40_000_000
MAX_GALLERY_BYTES = 50 * 2 ** 20
MAX_GALLERY_ITEMS = 500
MAX_THUMB_PIXELS = 512
GALLERY_CSV = "gallery.csv"  # ml.uncertainty.GALLERY_CSV (the web side does not import ml)
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
FIGURE_FIELDS = ("lambda_export", "figure4_image", "figure4_gallery")


def _read(handle: BinaryIO, limit: int, what: str) -> bytes:
    handle.seek(0)
    data = handle.read(limit + 1)
    if not data:
        raise InvalidInput(f"{what}: the file is empty")
    if len(data) > limit:
        raise InvalidInput(f"{what}: over the {limit // 2 ** 20} MB limit")
    return data


def lambda_export_check(data: bytes) -> None:
    """A CSV with a 'lambda' column (ml.train's lambdas.csv); rows are read when the page shows them."""
    try:
        header = next(csv.reader(io.StringIO(data[:65536].decode("utf-8-sig"))), [])
    except UnicodeDecodeError:
        raise InvalidInput("λ export: not a UTF-8 CSV file") from None
    if not {"lambda", "lam", "λ"} & {name.strip() for name in header}:
        raise InvalidInput(f"λ export: needs a 'lambda' column (ml.train's lambdas.csv); found {header[:8]}")


def _image_format(data: bytes, what: str, max_pixels: int) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
            if kind not in IMAGE_TYPES:
                raise InvalidInput(f"{what}: a PNG or JPEG image is needed, not {kind}")
            if width * height > max_pixels:
                raise InvalidInput(f"{what}: {width}x{height} pixels is too large")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput(f"{what}: not a readable PNG or JPEG image") from None
    return kind


def figure4_image_check(data: bytes) -> None:
    _image_format(data, "Figure 4 image", MAX_FIGURE_PIXELS)


def figure4_gallery_read(data: bytes) -> list[dict]:
    """The gallery's captions in display order, each image checked: [{file, group, index, path, given_label,
    original_label, flipped, lambda, content_type}]."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidInput("Figure 4 gallery: not a zip file (python -m ml.uncertainty --gallery writes one)") from None
    with archive:
        names = set(archive.namelist())
        if GALLERY_CSV not in names:
            raise InvalidInput(f"Figure 4 gallery: no {GALLERY_CSV} in the zip")
        try:
            rows = list(csv.DictReader(io.StringIO(archive.read(GALLERY_CSV).decode("utf-8-sig"))))
        except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile, OSError) as exc:
            raise InvalidInput(f"Figure 4 gallery: {GALLERY_CSV} is not readable ({exc})") from None
        if not rows:
            raise InvalidInput(f"Figure 4 gallery: {GALLERY_CSV} lists no images")
        if len(rows) > MAX_GALLERY_ITEMS:
            raise InvalidInput(f"Figure 4 gallery: at most {MAX_GALLERY_ITEMS} images (got {len(rows)})")
        items = []
        for line, row in enumerate(rows, start=2):
            name = (row.get("file") or "").strip()
            where = f"Figure 4 gallery, {GALLERY_CSV} line {line}"
            if name not in names:
                raise InvalidInput(f"{where}: image {name!r} is not in the zip")
            try:
                lam = float(row.get("lambda") or "")
            except ValueError:
                raise InvalidInput(f"{where}: lambda {row.get('lambda')!r} is not a number") from None
            if not math.isfinite(lam):
                raise InvalidInput(f"{where}: lambda must be a finite number")
            try:
                kind = _image_format(archive.read(name), f"{where} ({name})", MAX_THUMB_PIXELS ** 2)
            except (zipfile.BadZipFile, OSError, RuntimeError):
                raise InvalidInput(f"{where}: {name!r} cannot be read from the zip") from None
            given = (row.get("given_label") or "").strip()[:64]
            items.append({"file": name, "group": ((row.get("group") or "").strip() or given or "?")[:80],
                          "index": (row.get("index") or "").strip()[:20], "path": (row.get("path") or "").strip()[:200],
                          "given_label": given, "original_label": (row.get("original_label") or "").strip()[:64],
                          "flipped": str(row.get("flipped", "")).strip().lower() in ("1", "true", "yes"),
                          "lambda": lam, "content_type": IMAGE_TYPES[kind]})
    return items


def _content_name(data: bytes, suffix: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}{suffix}"


def model_figures_store(*, model_version: ModelVersion, lambda_export: BinaryIO | None = None,
                        figure4_image: BinaryIO | None = None, figure4_gallery: BinaryIO | None = None) -> list[str]:
    """Check the given files and put them on `model_version` (not saved). Returns the names of the fields set;
    the files they replace are left for model_figures_forget. Raises InvalidInput before storing anything."""
    checked = {}
    if lambda_export is not None:
        data = _read(lambda_export, MAX_LAMBDA_BYTES, "λ export")
        lambda_export_check(data)
        checked["lambda_export"] = (data, "_lambdas.csv")
    if figure4_image is not None:
        data = _read(figure4_image, MAX_FIGURE_BYTES, "Figure 4 image")
        figure4_image_check(data)
        checked["figure4_image"] = (data, "_figure4" + (".png" if data.startswith(b"\x89PNG") else ".jpg"))
    items = None
    if figure4_gallery is not None:
        data = _read(figure4_gallery, MAX_GALLERY_BYTES, "Figure 4 gallery")
        items = figure4_gallery_read(data)
        checked["figure4_gallery"] = (data, "_figure4_gallery.zip")
    for field_name, (data, suffix) in checked.items():
        getattr(model_version, field_name).save(_content_name(data, suffix), ContentFile(data), save=False)
    if items is not None:
        model_version.figure4_items = items
    return list(checked)


def model_figures_forget(*, names: list[str]) -> None:
    """Delete stored figure files no model refers to any more (files are content-addressed and may be shared)."""
    storage = ModelVersion._meta.get_field("figure4_image").storage
    for name in names:
        referenced = ModelVersion.objects.filter(
            Q(lambda_export=name) | Q(figure4_image=name) | Q(figure4_gallery=name)).exists()
        if name and not referenced:
            try:
                storage.delete(name)
            except OSError:
                pass  # a leftover file harms nothing; the next clean-up may take it


def _names(model_version: ModelVersion) -> set[str]:
    return {getattr(model_version, field).name for field in FIGURE_FIELDS if getattr(model_version, field)}


def model_version_attach_figures(*, model_version: ModelVersion, by, lambda_export: BinaryIO | None = None,
                                 figure4_image: BinaryIO | None = None,
                                 figure4_gallery: BinaryIO | None = None) -> ModelVersion:
    """The owner attaches (or replaces) the training run's λ export and Figure 4 files of their model."""
    if by is None or (model_version.owner_id != by.pk and not by.is_superuser):
        raise PermissionDenied(f"only {model_version.owner} (the owner) can attach figures to {model_version.name!r}")
    if lambda_export is None and figure4_image is None and figure4_gallery is None:
        raise InvalidInput("Choose at least one file: the λ export (lambdas.csv), the Figure 4 PNG or its gallery zip.")
    with transaction.atomic():
        model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        before = _names(model_version)
        fields = model_figures_store(model_version=model_version, lambda_export=lambda_export,
                                     figure4_image=figure4_image, figure4_gallery=figure4_gallery)
        model_version.save(update_fields=[*fields, *(["figure4_items"] if "figure4_gallery" in fields else [])])
        replaced = sorted(before - _names(model_version))
        transaction.on_commit(lambda: model_figures_forget(names=replaced))
    return model_version
