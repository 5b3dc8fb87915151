"""RAF-DB basic emotions, read from its own release layout.

    <root>/EmoLabel/list_patition_label.txt      lines "train_00001.jpg 5" (labels 1..7; the file name's
                                                 misspelling is RAF-DB's own)
    <root>/Image/aligned/train_00001_aligned.jpg the 100x100 aligned faces (used when present)
    <root>/Image/original/train_00001.jpg        fallback when there is no aligned folder

Labels 1..7 are RAF-DB's order: Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral (RAFDB_BASIC7).
The split is the file-name prefix (train_ / test_). RAF-DB has no valence/arousal: attach pseudo-VA with
`va_csv` (see `python -m ml.va`).
"""
from __future__ import annotations

from pathlib import Path

from ml.data.base import DatasetError, FERDataset
from ml.labels import RAFDB_BASIC7

__all__ = ["LABEL_FILE", "load_rafdb", "parse_partition_file"]

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
SPLITS = ("train", "test")


def parse_partition_file(path: Path) -> list[tuple[str, int]]:
    """(file name, 0-based label) per line of RAF-DB's partition label file."""
    rows = []
    with path.open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DatasetError(f"{path}:{line_no}: expected '<file> <label 1-7>', got {line.strip()!r}")
            name, label = parts
            try:
                value = int(label)
            except ValueError:
                raise DatasetError(f"{path}:{line_no}: label {label!r} is not an integer") from None
            if not 1 <= value <= len(RAFDB_BASIC7):
                raise DatasetError(f"{path}:{line_no}: label {value} outside RAF-DB's 1..7")
            rows.append((name, value - 1))
    return rows


def _image_path(name: str, aligned: bool) -> Path:
    if aligned:
        stem, ext = name.rsplit(".", 1) if "." in name else (name, "jpg")
        return Path("Image") / "aligned" / f"{stem}_aligned.{ext}"
    return Path("Image") / "original" / name


def load_rafdb(root: str | Path, split: str, *, transform=None, aligned: bool | None = None) -> FERDataset:
    """RAF-DB basic split `split` ("train" or "test") with labels in RAFDB_BASIC7 order."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"RAF-DB has splits {SPLITS}, not {split!r}")
    label_file = root / LABEL_FILE
    if not label_file.is_file():
        raise DatasetError(f"RAF-DB label file not found: {label_file} (expected the RAF-DB basic layout: "
                           f"EmoLabel/list_patition_label.txt and Image/aligned/)")
    if aligned is None:
        aligned = (root / "Image" / "aligned").is_dir()
    rows = [(name, label) for name, label in parse_partition_file(label_file) if name.startswith(f"{split}_")]
    if not rows:
        raise DatasetError(f"{label_file}: no '{split}_' images listed")
    relative = [_image_path(name, aligned) for name, _ in rows]
    dataset = FERDataset(classes=RAFDB_BASIC7, labels=[label for _, label in rows],
                         paths=[p.as_posix() for p in relative], files=[root / p for p in relative],
                         root=root, transform=transform, source=f"rafdb/{split}")
    dataset.drop_missing_files()
    return dataset
