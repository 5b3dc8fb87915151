"""A folder per class (SFEW style, or any images sorted by emotion).

    <root>/<split>/<Class>/<image>    split folder: train|Train|training for "train",
                                      test|Test|val|Val|validation for "test"
    <root>/<Class>/<image>            split "all": the root holds the class folders itself

Class names are the folder names canonicalised with ml.labels (Happy -> Happiness, Angry -> Anger, ...),
taken over every split folder so train and test share one class list, ordered as RAF-DB's basic set when
they all belong to it, else as AffectNet's, else alphabetically. A `manifest.csv` with filename, valence,
arousal (what ml.data.synthetic.write_dataset writes) beside the class folders gives `.va`.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ml.data.base import DatasetError, FERDataset, files_under, read_va_table
from ml.labels import AFFECTNET8, RAFDB_BASIC7, canonical_label

__all__ = ["load_folder", "SPLIT_FOLDERS", "class_order"]

SPLIT_FOLDERS = {
    "train": ("train", "Train", "training", "Training", "TRAIN"),
    "test": ("test", "Test", "val", "Val", "validation", "Validation", "TEST", "VAL"),
    "val": ("val", "Val", "validation", "Validation", "VAL"),
}
MANIFEST = "manifest.csv"


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def class_order(names) -> list[str]:
    """Canonical names in a stable order: RAF-DB basic order, else AffectNet order, else alphabetical."""
    unique = sorted({canonical_label(n) for n in names})
    for reference in (RAFDB_BASIC7, AFFECTNET8):
        if set(unique) <= set(reference):
            return [c for c in reference if c in unique]
    return unique


def _split_folder(root: Path, split: str) -> Path | None:
    for name in SPLIT_FOLDERS.get(split, ()):
        if (root / name).is_dir():
            return root / name
    return None


def load_folder(root: str | Path, split: str, *, transform=None) -> FERDataset:
    """Images under `<root>/<split folder>/<Class>/` (or `<root>/<Class>/` for split "all")."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"folder dataset root not found: {root}")
    if split == "all":
        base, split_roots = root, [root]
    else:
        if split not in SPLIT_FOLDERS:
            raise DatasetError(f"folder datasets have splits {tuple(SPLIT_FOLDERS)} or 'all', not {split!r}")
        base = _split_folder(root, split)
        if base is None:
            found = [p.name for p in _subfolders(root)]
            raise DatasetError(f"no {split} folder under {root} (looked for {', '.join(SPLIT_FOLDERS[split])}; "
                               f"found {found}); use split 'all' for a root that holds the class folders itself")
        split_roots = [p for p in (_split_folder(root, s) for s in ("train", "test", "val")) if p is not None]
    class_dirs = [d for s in split_roots for d in _subfolders(s) if files_under(d)]  # empty folders: no class
    if not class_dirs:
        raise DatasetError(f"no class folders under {base}")
    classes = class_order(d.name for d in class_dirs)
    index = {name: i for i, name in enumerate(classes)}
    files, labels = [], []
    for class_dir in _subfolders(base):
        images = files_under(class_dir)
        if not images:
            continue
        files += images
        labels += [index[canonical_label(class_dir.name)]] * len(images)
    if not files:
        raise DatasetError(f"no images under {base}/<class>/")
    paths = [f.relative_to(root).as_posix() for f in files]
    dataset = FERDataset(classes=classes, labels=labels, paths=paths, files=files, root=root, transform=transform,
                         source=f"folder/{split}")
    manifest = base / MANIFEST
    if manifest.is_file() and {"valence", "arousal"} <= set(_header(manifest)):
        prefix = base.relative_to(root).as_posix()
        table = read_va_table(manifest)
        dataset.attach_va({f"{prefix}/{k}" if prefix != "." else k: v for k, v in table.items()},
                          what=str(manifest))
    return dataset
