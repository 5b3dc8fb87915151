"""Datasets: `build_dataset(name, root, split, *, train, image_size, ...)` -> FERDataset.

Torch-free at import (the web process imports ml.data.synthetic): loaders are imported inside
build_dataset. Layouts are documented in ml/DATA.md and in each loader module.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ml.data.base import FERDataset

__all__ = ["DATASETS", "VA_CSV_NAME", "build_dataset"]

DATASETS = ("synthetic", "rafdb", "affectnet", "folder")
VA_CSV_NAME = "pseudo_va.csv"  # picked up from <root> when no va_csv is given


def build_dataset(name: str, root: str | Path | None = None, split: str = "train", *, train: bool,
                  image_size: int, classes: Sequence[str] | None = None, va_csv: str | Path | None = None,
                  erasing: bool | None = None, pad: int | None = None, normalization: dict | None = None,
                  n: int | None = None, seed: int | None = None, synthetic_n: int = 2000, synthetic_seed: int = 0,
                  ambiguity: float = 0.3, n_annotators: int = 10, occlusion: str | None = None,
                  cache_dir: str | Path | None = None, affectnet_7: bool = False,
                  csv_file: str | Path | None = None, crop_faces: bool = False) -> FERDataset:
    """Build one split of a dataset with the reference transform (ml.data.transforms).

    Args:
        name: "synthetic", "rafdb", "affectnet" or "folder".
        root: dataset folder (ignored for synthetic).
        split: "train" or "test" ("val" for affectnet/folder/synthetic, "all" for folder).
        train: augment (flip, pad-and-crop, random erasing) or not.
        image_size: square input size in pixels (reference: 224 ResNet-18, 112 ResNet-50).
        classes: relabel into this class order by name; images of classes it lacks are dropped (logged,
            counts in `.dropped`). For synthetic faces: the emotions to draw.
        va_csv: CSV (official ULDL layout or a manifest) whose valence/arousal are attached by file name;
            by default `<root>/pseudo_va.csv` when it exists.
        erasing: random erasing on/off for a training transform (False: ULDL's neighbour view).
        pad: pad of the random crop (default: 8 at 224, 4 at 112, same ratio otherwise).
        n, seed (or synthetic_n, synthetic_seed): synthetic faces per split and their seed.
        ambiguity, n_annotators, occlusion, cache_dir: synthetic face options (cache_dir keeps .npz files).
        affectnet_7: drop Contempt (the ULDL configs' 7 classes). csv_file: read this AffectNet-layout CSV
            instead of the split's. crop_faces: crop AffectNet images to the CSV's face box.
    Raises:
        DatasetError (a ValueError) with a readable message for missing folders, bad CSVs, unknown names.
    """
    from ml.data.base import DatasetError, read_va_table
    from ml.data.transforms import build_transform

    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    transform = build_transform(image_size, train=train, erasing=erasing, pad=pad, normalization=normalization)
    if name == "synthetic":
        from ml.data.synthetic_dataset import SyntheticFERDataset

        dataset = SyntheticFERDataset(split, n=synthetic_n if n is None else n,
                                      seed=synthetic_seed if seed is None else seed, image_size=image_size,
                                      classes=classes, ambiguity=ambiguity, n_annotators=n_annotators,
                                      occlusion=occlusion, transform=transform, cache_dir=cache_dir)
    else:
        if root is None or str(root) == "":
            raise DatasetError(f"dataset {name!r} needs a root folder")
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"data root not found: {root}")
        if name == "rafdb":
            from ml.data.rafdb import load_rafdb

            dataset = load_rafdb(root, split, transform=transform)
        elif name == "affectnet":
            from ml.data.affectnet import load_affectnet

            dataset = load_affectnet(root, split, transform=transform, seven=affectnet_7, csv_file=csv_file,
                                     crop_faces=crop_faces)
        else:
            from ml.data.folder import load_folder

            dataset = load_folder(root, split, transform=transform)
        if va_csv is None and (root / VA_CSV_NAME).is_file():
            va_csv = root / VA_CSV_NAME
        if classes is not None:
            dataset.remap_classes(list(classes))
    if va_csv is not None:
        dataset.attach_va(read_va_table(va_csv), what=str(va_csv))
    if len(dataset) == 0:
        raise DatasetError(f"{name}/{split}: no images left")
    return dataset
