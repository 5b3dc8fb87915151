"""The FERDataset contract shared by every loader, plus name matching for VA tables and class remapping.

A dataset is a list of images with a given (possibly noisy, mutable) label each and optional valence/
arousal; `__getitem__` returns dict(image=(3, H, W) tensor, label=int, va=(2,) tensor (NaN if unknown),
index=int). Loaders only parse their on-disk layout and hand arrays to this class.
"""
from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ml.csv_files import stripped_dict_reader
from ml.data.transforms import NORMALIZATION
from ml.labels import canonical_label, map_indices

__all__ = ["DatasetError", "FERDataset", "name_key", "read_va_table", "IMAGE_EXTENSIONS"]

log = logging.getLogger("ml.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
PATH_COLUMNS = ("subDirectory_filePath", "filename", "path", "file", "image")


class DatasetError(ValueError):
    """Bad dataset input (missing folder or file, malformed CSV, unknown class): shown without a traceback."""



def name_key(path: str) -> str:
    """File name for cross-file matching: 'Image/aligned/train_00001_aligned.jpg' -> 'train_00001'."""
    stem = os.path.splitext(os.path.basename(str(path).replace("\\", "/")))[0].lower()
    return stem[: -len("_aligned")] if stem.endswith("_aligned") else stem


def _relative(path: str) -> str:
    path = str(path).strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _finite_va(value: str, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: valence/arousal {value!r} is not a number") from None
    # AffectNet marks "no VA" with -2; anything outside [-1, 1] or non-finite means unknown.
    return v if math.isfinite(v) and -1.0 <= v <= 1.0 else float("nan")


def read_va_table(path: str | Path) -> dict[str, tuple[float, float]]:
    """Read valence/arousal per image from a CSV: the official ULDL layout (subDirectory_filePath,
    expression, valence, arousal[, knn]), an AffectNet CSV, or a synthetic manifest.csv (filename, ...).

    Returns {relative path as written: (valence, arousal)}; unknown values are NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"VA CSV not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader, header = stripped_dict_reader(fh)
        path_col = next((c for c in PATH_COLUMNS if c in header), None)
        if path_col is None or "valence" not in header or "arousal" not in header:
            raise DatasetError(f"{path}: a VA CSV needs a file column ({' or '.join(PATH_COLUMNS)}) and valence, "
                               f"arousal columns; found {header}")
        table = {}
        for line, row in enumerate(reader, start=2):
            name = (row.get(path_col) or "").strip()
            if not name:
                continue
            where = f"{path}:{line}"
            table[name] = (_finite_va(row["valence"], where), _finite_va(row["arousal"], where))
    if not table:
        raise DatasetError(f"{path}: no rows")
    return table


class FERDataset(Dataset):
    """Map-style facial-expression dataset (the contract in the team brief).

    Attributes:
        classes: class names in label-index order.
        labels: (N,) int64 given labels; mutable (label noise is applied in place).
        va: (N, 2) float32 valence/arousal, NaN rows unknown; None when the dataset has no VA at all.
        paths: (N,) image names relative to `root` (what lambdas.csv and VA tables refer to).
        files: (N,) absolute image files, or None for in-memory datasets (synthetic).
        dropped: {class name: count} of images dropped because the requested class set lacks them.
    """

    #: per-sample attributes filtered together by `select`; subclasses add theirs.
    per_sample = ("labels", "va", "paths", "files")

    def __init__(self, *, classes: Sequence[str], labels, paths: Sequence[str], files: Sequence[Path] | None = None,
                 va=None, root: str | Path | None = None, transform: Callable | None = None, source: str = ""):
        self.classes = [str(c) for c in classes]
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.paths = [str(p) for p in paths]
        self.files = None if files is None else [Path(f) for f in files]
        self.va = None if va is None else np.asarray(va, dtype=np.float32).reshape(-1, 2).copy()
        self.root = None if root is None else Path(root)
        self.transform = transform
        self.source = source
        self.dropped: dict[str, int] = {}
        n = len(self.labels)
        if len(self.paths) != n or (self.files is not None and len(self.files) != n) \
                or (self.va is not None and len(self.va) != n):
            raise ValueError("labels, paths, files and va must have one entry per image")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DatasetError(f"labels out of range for {len(self.classes)} classes")

    # ------------------------------------------------------------------ contract

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def normalization(self) -> dict:
        """Mean/std the transform applies (stored in checkpoints)."""
        return dict(getattr(self.transform, "normalization", None) or NORMALIZATION)

    def load_image(self, i: int) -> Image.Image:
        """The i-th image as RGB, untransformed."""
        if self.files is None:
            raise NotImplementedError("in-memory datasets override load_image")
        path = self.files[i]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        image = self.load_image(i)
        if self.transform is None:
            raise RuntimeError("dataset has no transform; build it with ml.data.build_dataset")
        va = torch.full((2,), float("nan")) if self.va is None else torch.from_numpy(self.va[i].copy())
        return {"image": self.transform(image), "label": int(self.labels[i]), "va": va, "index": i}

    # ------------------------------------------------------------------ editing

    def select(self, keep) -> FERDataset:
        """Keep only the images where `keep` (bool mask or indices) says so, in place; returns self."""
        keep = np.asarray(keep)
        index = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        for attr in self.per_sample:
            value = getattr(self, attr, None)
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                setattr(self, attr, value[index].copy())
            else:
                setattr(self, attr, [value[j] for j in index])
        return self

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts, strict=False)}

    def remap_classes(self, target: Sequence[str]) -> dict[str, int]:
        """Relabel into `target`'s class order by canonical name; drop images of classes `target` lacks.

        Returns (and stores in `.dropped`) {class name: images dropped}.
        """
        target = [str(c) for c in target]
        if len({canonical_label(c) for c in target}) != len(target):
            raise DatasetError(f"duplicate class names in {target}")
        mapping = map_indices(self.classes, target)
        lookup = np.array([-1 if m is None else m for m in mapping], dtype=np.int64)
        new = lookup[self.labels] if len(self.labels) else self.labels
        missing = Counter(self.classes[old] for old in self.labels[new < 0])
        self.dropped = {name: int(count) for name, count in missing.items()}
        keep = new >= 0
        self.labels = new
        self.select(keep)
        self.classes = target
        if self.dropped:
            total = sum(self.dropped.values())
            log.warning("%s: dropped %d image(s) of classes the target set lacks: %s", self.source or "dataset",
                        total, ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())))
        return dict(self.dropped)

    def attach_va(self, table: dict[str, tuple[float, float]], *, what: str = "VA table") -> int:
        """Set `.va` from {image path: (valence, arousal)} matched by relative path, else by file name.

        Returns the number of images matched; images without a match get NaN. Raises if none match.
        """
        by_path = {_relative(k): v for k, v in table.items()}
        key_counts = Counter(name_key(k) for k in by_path)
        by_key = {name_key(k): v for k, v in by_path.items() if key_counts[name_key(k)] == 1}
        va = np.full((len(self), 2), np.nan, dtype=np.float32) if self.va is None else self.va.copy()
        matched = 0
        for i, p in enumerate(self.paths):
            hit = by_path.get(_relative(p)) or by_key.get(name_key(p))
            if hit is not None:
                va[i] = hit
                matched += 1
        if len(self) and matched == 0:
            example = next(iter(by_path), "")
            raise DatasetError(f"{what}: no image of {self.source or 'the dataset'} matches its file names "
                               f"(e.g. dataset {self.paths[0]!r} vs table {example!r})")
        if matched < len(self):
            log.warning("%s: %d of %d images have no valence/arousal in %s", self.source or "dataset",
                        len(self) - matched, len(self), what)
        self.va = va
        return matched

    def drop_missing_files(self) -> int:
        """Drop images whose file does not exist (logged); raise if none exist. Returns the number dropped."""
        if self.files is None:
            return 0
        exists = np.array([f.is_file() for f in self.files], dtype=bool)
        missing = int((~exists).sum())
        if missing and missing == len(self):
            raise DatasetError(f"{self.source}: none of the {missing} listed images exist "
                               f"(first: {self.files[0]})")
        if missing:
            first = self.files[int(np.flatnonzero(~exists)[0])]
            log.warning("%s: %d of %d listed images are missing and were skipped (first: %s)", self.source,
                        missing, len(self), first)
            self.select(exists)
        return missing

    def __repr__(self) -> str:
        va = "none" if self.va is None else f"{int((~np.isnan(self.va).any(1)).sum())}/{len(self)}"
        return (f"{type(self).__name__}(source={self.source!r}, n={len(self)}, classes={self.classes}, va={va}, "
                f"transform={self.transform!r})")


def files_under(folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (deterministic order)."""
    ext = {e.lower() for e in extensions}
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ext), key=lambda p: p.name)
