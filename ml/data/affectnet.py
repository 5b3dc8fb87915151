"""AffectNet (and any CSV in its layout, e.g. the official ULDL training CSVs).

    <root>/training.csv    train split   (also accepted: train.csv, Manually_Annotated_file_lists/training.csv)
    <root>/validation.csv  test split    (AffectNet's test set is not public; also: val.csv, test.csv)
    images under <root>/Manually_Annotated_Images/, <root>/Manually_Annotated/Manually_Annotated_Images/,
    <root>/images/ or <root>/ itself, joined with each row's subDirectory_filePath.

Columns: subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
valence, arousal; only subDirectory_filePath and expression are required (valence/arousal give `.va`,
face_* allow `crop_faces`). expression 0..7 = Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger,
Contempt (AFFECTNET8); 8..10 (None, Uncertain, Non-face) are dropped. `seven=True` also drops Contempt,
giving the ULDL configs' 7 classes. VA of -2 (AffectNet's "none") becomes NaN.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ml.csv_files import stripped_dict_reader
from ml.data.base import DatasetError, FERDataset
from ml.labels import AFFECTNET7, AFFECTNET8

__all__ = ["load_affectnet", "read_affectnet_csv", "AffectNetDataset", "SPLIT_FILES"]

log = logging.getLogger("ml.data")

SPLIT_FILES = {
    "train": ("training.csv", "train.csv"),
    "test": ("validation.csv", "val.csv", "test.csv"),
    "val": ("validation.csv", "val.csv"),
}
LIST_FOLDERS = ("", "Manually_Annotated_file_lists")
IMAGE_FOLDERS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "images", "")
NON_EMOTION = {8: "None", 9: "Uncertain", 10: "Non-face"}
BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")


class AffectNetDataset(FERDataset):
    """FERDataset whose images may be cropped to the CSV's face box (`boxes`, (N, 4) x, y, w, h)."""

    per_sample = (*FERDataset.per_sample, "boxes")

    def __init__(self, *, boxes=None, **kwargs):
        super().__init__(**kwargs)
        self.boxes = boxes

    def load_image(self, i: int) -> Image.Image:
        image = super().load_image(i)
        if self.boxes is None:
            return image
        x, y, w, h = (int(v) for v in self.boxes[i])
        if w <= 0 or h <= 0:
            return image
        return image.crop((max(0, x), max(0, y), min(image.width, x + w), min(image.height, y + h)))


def read_affectnet_csv(path: Path) -> tuple[list[dict], list[str]]:
    """Rows (dicts of stripped strings) and the header; only subDirectory_filePath and expression required."""
    if not path.is_file():
        raise DatasetError(f"AffectNet CSV not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader, header = stripped_dict_reader(fh)
        missing = [c for c in ("subDirectory_filePath", "expression") if c not in header]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; found {header}")
        rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return rows, header


def _split_csv(root: Path, split: str) -> Path:
    if split not in SPLIT_FILES:
        raise DatasetError(f"AffectNet has splits {tuple(SPLIT_FILES)}, not {split!r}")
    for folder in LIST_FOLDERS:
        for name in SPLIT_FILES[split]:
            candidate = root / folder / name
            if candidate.is_file():
                return candidate
    raise DatasetError(f"no {split} CSV under {root} (looked for {', '.join(SPLIT_FILES[split])}, also in "
                       f"Manually_Annotated_file_lists/)")


def _image_folder(root: Path, first: str) -> Path:
    for folder in IMAGE_FOLDERS:
        if (root / folder / first).is_file():
            return root / folder
    return root


def _float(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DatasetError(f"{where}: {value!r} is not a number") from None


def load_affectnet(root: str | Path, split: str, *, transform=None, seven: bool = False,
                   csv_file: str | Path | None = None, crop_faces: bool = False) -> AffectNetDataset:
    """AffectNet split (or the CSV `csv_file`) with labels in AFFECTNET8 (or AFFECTNET7 if `seven`) order."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"AffectNet root not found: {root}")
    path = Path(csv_file) if csv_file else _split_csv(root, split)
    rows, header = read_affectnet_csv(path)
    classes = AFFECTNET7 if seven else AFFECTNET8
    has_va = "valence" in header and "arousal" in header
    if crop_faces and not all(c in header for c in BOX_COLUMNS):
        raise DatasetError(f"{path}: crop_faces needs the columns {BOX_COLUMNS}")
    names, labels, va, boxes = [], [], [], []
    skipped: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        try:
            expression = int(float(row["expression"]))
        except ValueError:
            raise DatasetError(f"{where}: expression {row['expression']!r} is not an integer") from None
        if expression in NON_EMOTION or (seven and expression == AFFECTNET8.index("Contempt")):
            name = NON_EMOTION.get(expression, "Contempt")
            skipped[name] = skipped.get(name, 0) + 1
            continue
        if not 0 <= expression < len(classes):
            raise DatasetError(f"{where}: expression {expression} is not an AffectNet class id (0..10)")
        if not row["subDirectory_filePath"]:
            raise DatasetError(f"{where}: empty subDirectory_filePath")
        names.append(row["subDirectory_filePath"].replace("\\", "/"))
        labels.append(expression)
        if has_va:
            v, a = _float(row["valence"], where), _float(row["arousal"], where)
            va.append([v if -1 <= v <= 1 else np.nan, a if -1 <= a <= 1 else np.nan])
        if crop_faces:
            boxes.append([_float(row[c], where) for c in BOX_COLUMNS])
    if skipped:
        log.info("%s: skipped %s", path.name, ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())))
    if not names:
        raise DatasetError(f"{path}: no rows with an emotion label in {classes}")
    folder = _image_folder(root, names[0])
    dataset = AffectNetDataset(
        classes=classes, labels=labels, paths=names, files=[folder / n for n in names],
        va=np.asarray(va, dtype=np.float32) if has_va else None, root=folder, transform=transform,
        source=f"affectnet/{split}", boxes=np.asarray(boxes, dtype=np.float32) if crop_faces else None)
    dataset.drop_missing_files()
    return dataset
