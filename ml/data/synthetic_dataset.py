"""Synthetic faces (ml.data.synthetic) as a FERDataset, drawn once and cached.

Every face carries what real datasets lack: its true valence/arousal (`.va`), its true emotion mixture
(`.mixtures`, (N, C)) and a simulated annotator panel (`.votes`, (N, C) counts). The given label is the
mixture's dominant emotion (`.true_labels` keeps it when label noise later changes `.labels`).

Splits are disjoint: "train" draws faces with `seed` itself (the same faces as
`generate_faces(n, seed=seed)` and `write_dataset(..., seed=seed)`), "test" and "val" with seeds derived
from it. Drawing costs a few ms per face, so arrays are cached per process (train and neighbour views of
one run share them) and, with `cache_dir`, on disk as .npz.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ml.data.base import DatasetError, FERDataset
from ml.labels import RAFDB_BASIC7, canonical_label

__all__ = ["SyntheticFERDataset", "split_seed", "synthetic_arrays", "MAX_FACE_SIZE"]

log = logging.getLogger("ml.data")

SPLITS = ("train", "test", "val")
MAX_FACE_SIZE = 112  # faces are drawn at min(image_size, 112) px and resized by the transform beyond that
_MEMORY: OrderedDict[str, dict] = OrderedDict()
_MEMORY_ENTRIES = 6


def split_seed(seed: int, split: str) -> int:
    """Seed of a split's faces: `seed` for train, a derived one for test/val (so splits never overlap)."""
    from ml.data.synthetic import derive_seed

    if split not in SPLITS:
        raise DatasetError(f"synthetic data has splits {SPLITS}, not {split!r}")
    return seed if split == "train" else derive_seed(seed, -1 - SPLITS.index(split))


def _draw(n: int, seed: int, options: dict, progress: bool | None) -> dict:
    from ml.data.synthetic import derive_seed, generate_face

    size = options["size"]
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    va = np.empty((n, 2), dtype=np.float32)
    classes = list(options["classes"])
    mixtures = np.empty((n, len(classes)), dtype=np.float32)
    votes = np.empty((n, len(classes)), dtype=np.int64)
    # progress None: a bar only on a terminal (tqdm's disable=None) and only for many faces
    disable = (None if n >= 500 else True) if progress is None else not progress
    for i in tqdm(range(n), desc="drawing synthetic faces", leave=False, disable=disable):
        face = generate_face(derive_seed(seed, i), **options)
        images[i] = np.asarray(face.image.convert("RGB"), dtype=np.uint8)
        labels[i], va[i] = face.label_index, (face.valence, face.arousal)
        mixtures[i], votes[i] = face.mixture, face.votes
    return {"images": images, "labels": labels, "va": va, "mixtures": mixtures, "votes": votes}


def synthetic_arrays(n: int, seed: int, *, cache_dir: str | Path | None = None, progress: bool | None = None,
                     **options) -> dict:
    """Arrays of n faces (images (N, S, S, 3) uint8, labels, va, mixtures, votes), cached as described above.

    options: generate_face keywords (size, classes, ambiguity, n_annotators, annotator_temperature, occlusion).
    """
    options["classes"] = list(options.get("classes") or RAFDB_BASIC7)
    from ml.data.synthetic import DRAWING_VERSION

    # The drawing version is part of the key: a new generator must never be served old cached pixels.
    key_src = json.dumps({"n": n, "seed": seed, "drawing": DRAWING_VERSION, **options}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    cache_file = Path(cache_dir) / f"synthetic_{key}.npz" if cache_dir else None
    arrays = None
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as data:
                arrays = {k: data[k] for k in ("images", "labels", "va", "mixtures", "votes")}
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable synthetic cache %s (%s)", cache_file, exc)
    if arrays is None:
        arrays = _draw(n, seed, options, progress=progress)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(cache_file)
    for value in arrays.values():
        value.setflags(write=False)  # shared between datasets: each dataset copies what it mutates
    _MEMORY[key] = arrays
    while len(_MEMORY) > _MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return arrays


class SyntheticFERDataset(FERDataset):
    """In-memory synthetic faces with true VA, true mixtures and annotator votes."""

    per_sample = (*FERDataset.per_sample, "images", "mixtures", "votes", "true_labels", "face_index")

    def __init__(self, split: str = "train", *, n: int = 2000, seed: int = 0, image_size: int = 112,
                 face_size: int | None = None, classes: Sequence[str] | None = None, ambiguity: float = 0.3,
                 n_annotators: int = 10, annotator_temperature: float = 1.0, occlusion: str | None = None,
                 transform=None, cache_dir: str | Path | None = None, progress: bool | None = None):
        if n < 1:
            raise DatasetError(f"synthetic datasets need at least 1 face, got n={n}")
        if not 0 <= ambiguity <= 1:
            raise DatasetError(f"ambiguity must be in [0, 1], got {ambiguity}")
        classes = [canonical_label(c) for c in (classes or RAFDB_BASIC7)]
        from ml.data.synthetic import EMOTIONS

        unknown = [c for c in classes if c not in EMOTIONS]
        if unknown:
            raise DatasetError(f"synthetic faces cannot draw {unknown}; they know {list(EMOTIONS)}")
        size = int(face_size or min(image_size, MAX_FACE_SIZE))
        if size < 16:
            size = 16  # the generator's minimum; the transform resizes down
        self.split, self.seed = split, int(seed)
        arrays = synthetic_arrays(n, split_seed(int(seed), split), cache_dir=cache_dir, progress=progress,
                                  size=size, classes=classes, ambiguity=float(ambiguity),
                                  n_annotators=int(n_annotators), annotator_temperature=float(annotator_temperature),
                                  occlusion=occlusion)
        super().__init__(classes=classes, labels=arrays["labels"], va=arrays["va"],
                         paths=[f"synthetic/{split}/face_{i:05d}.png" for i in range(n)], files=None,
                         transform=transform, source=f"synthetic/{split}")
        self.images = arrays["images"]  # read-only, shared with other datasets of the same faces
        self.mixtures = arrays["mixtures"]
        self.votes = arrays["votes"]
        self.true_labels = arrays["labels"].copy()
        self.face_index = np.arange(n)

    def load_image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[int(i)])
