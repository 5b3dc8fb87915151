"""Human label distributions as training targets: the study export's soft_labels.csv.

Layout (study/exports.py): image (path relative to MEDIA_ROOT or another root), file, n_votes, then one
p_<label> column per label in the study's order. Labels are matched by canonical name (ml.labels) onto the
model's classes; mass on labels the model lacks is dropped and the rest renormalised. Rows without votes or
without mass on the model's classes are skipped (logged). Every item carries `target` (C,) besides the
usual FERDataset fields; its given label is the argmax of the human distribution.
"""
from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ml.csv_files import stripped_dict_reader
from ml.data.base import DatasetError, FERDataset
from ml.labels import canonical_label, map_indices

__all__ = ["SoftLabelTable", "read_soft_labels", "SoftLabelDataset", "load_soft_labels"]

log = logging.getLogger("ml.data")


class SoftLabelTable:
    """Parsed soft_labels.csv: image paths, vote counts and (N, C) distributions in the CSV's label order."""

    def __init__(self, labels: list[str], images: list[str], n_votes: np.ndarray, distributions: np.ndarray):
        self.labels, self.images, self.n_votes, self.distributions = labels, images, n_votes, distributions


def _number(value: str, where: str, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {column} {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise DatasetError(f"{where}: {column} must be a finite non-negative number, got {value!r}")
    return number


def read_soft_labels(path: str | Path) -> SoftLabelTable:
    """Read soft_labels.csv; raise DatasetError (with file and line) for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"soft-label file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader, header = stripped_dict_reader(fh)
            prob_columns = [c for c in header if c.startswith("p_") and len(c) > 2]
            if "image" not in header or not prob_columns:
                raise DatasetError(f"{path}: a soft-label file needs an `image` column and p_<label> columns "
                                   f"(the study export's soft_labels.csv); found {header}")
            images, votes, rows = [], [], []
            for line, row in enumerate(reader, start=2):
                where = f"{path}:{line}"
                image = (row.get("image") or "").strip()
                if not image:
                    raise DatasetError(f"{where}: empty image path")
                n = _number(row["n_votes"], where, "n_votes") if row.get("n_votes") not in (None, "") else 1.0
                # a row without votes has empty shares (the export leaves them blank); it is skipped later
                shares = [_number(row.get(c), where, c) for c in prob_columns] if n > 0 else [0.0] * len(prob_columns)
                images.append(image)
                votes.append(n)
                rows.append(shares)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return SoftLabelTable([c[2:] for c in prob_columns], images, np.asarray(votes, dtype=np.float64),
                          np.asarray(rows, dtype=np.float64))


class SoftLabelDataset(FERDataset):
    """Images with a human distribution each: items add `target` (C,) float32 in the model's class order."""

    per_sample = (*FERDataset.per_sample, "targets", "n_votes")

    def __init__(self, *, targets: np.ndarray, n_votes: np.ndarray, **kwargs):
        self.targets = np.asarray(targets, dtype=np.float32)
        self.n_votes = np.asarray(n_votes, dtype=np.float64)
        super().__init__(labels=self.targets.argmax(axis=1), **kwargs)

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["target"] = torch.from_numpy(self.targets[int(i)].copy())
        return item


def load_soft_labels(path: str | Path, *, classes: Sequence[str] | None, root: str | Path | None,
                     transform) -> SoftLabelDataset:
    """The images of soft_labels.csv with their distributions mapped onto `classes` (default: the CSV's labels).

    root: folder the `image` paths are relative to (default: the CSV's folder). Missing images are skipped
    with a warning; none found is a DatasetError.
    """
    table = read_soft_labels(path)
    classes = [canonical_label(c) for c in table.labels] if classes is None else [str(c) for c in classes]
    mapping = map_indices(table.labels, classes)
    if all(m is None for m in mapping):
        raise DatasetError(f"{path}: its labels {table.labels} share no class name with the model's {classes}")
    unused = [label for label, m in zip(table.labels, mapping, strict=True) if m is None]
    if unused:
        log.warning("%s: labels the model lacks, their share dropped: %s", path, ", ".join(unused))
    targets = np.zeros((len(table.images), len(classes)))
    for j, m in enumerate(mapping):
        if m is not None:
            targets[:, m] += table.distributions[:, j]
    mass = targets.sum(axis=1)
    keep = (mass > 0) & (table.n_votes > 0)
    if not keep.any():
        raise DatasetError(f"{path}: no row has votes on the model's classes")
    if (~keep).any():
        log.warning("%s: %d row(s) without votes on the model's classes skipped", path, int((~keep).sum()))
    root = Path(root) if root else Path(path).parent
    if not root.is_dir():
        raise DatasetError(f"image root not found: {root}")
    images = [image for image, k in zip(table.images, keep, strict=True) if k]
    dataset = SoftLabelDataset(targets=targets[keep] / mass[keep, None], n_votes=table.n_votes[keep],
                               classes=classes, paths=images, files=[root / image for image in images],
                               root=root, transform=transform, source=str(path))
    dataset.drop_missing_files()
    _check_readable(dataset)
    return dataset


def _check_readable(dataset: SoftLabelDataset) -> None:
    """Open every image's header now, so a broken file is an error before training, not mid-epoch."""
    from PIL import Image, UnidentifiedImageError

    for file in dataset.files:
        try:
            with Image.open(file):
                pass
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"cannot read image {file}: {exc}") from None
