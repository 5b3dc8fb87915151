"""Tiny on-disk datasets in each supported layout, drawn from synthetic faces (no real data is committed).

Each builder returns what it wrote (file names, labels by class name, VA), so tests can check that a
loader reads back exactly that.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.data.synthetic import derive_seed, generate_face
from ml.labels import AFFECTNET8, RAFDB_BASIC7

FACE_SIZE = 24  # small and fast; loaders resize anyway


@dataclass
class Written:
    """What a fixture builder wrote, per split: relative paths, class names, (valence, arousal)."""

    root: Path
    paths: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    va: dict[str, np.ndarray] = field(default_factory=dict)


def _faces(n: int, seed: int, classes=RAFDB_BASIC7):
    """n faces whose dominant emotions cycle through `classes`, so every class appears when n >= C."""
    return [generate_face(derive_seed(seed, i), size=FACE_SIZE, classes=classes, ambiguity=0.1,
                          dominant=classes[i % len(classes)]) for i in range(n)]


def make_rafdb(root: Path, n_train: int = 10, n_test: int = 5, seed: int = 0, *, aligned: bool = True) -> Written:
    """RAF-DB basic: EmoLabel/list_patition_label.txt (labels 1..7) + Image/aligned/<name>_aligned.jpg."""
    written = Written(root)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    folder = root / "Image" / ("aligned" if aligned else "original")
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for split, n, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1)):
        written.paths[split], written.labels[split], va = [], [], []
        for i, face in enumerate(_faces(n, split_seed), start=1):
            name = f"{split}_{i:05d}.jpg" if split == "train" else f"{split}_{i:04d}.jpg"
            file_name = name.replace(".jpg", "_aligned.jpg") if aligned else name
            face.image.save(folder / file_name, quality=95)
            lines.append(f"{name} {RAFDB_BASIC7.index(face.label) + 1}")
            written.paths[split].append(f"Image/{folder.name}/{file_name}")
            written.labels[split].append(face.label)
            va.append((face.valence, face.arousal))
        written.va[split] = np.asarray(va, dtype=np.float32)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return written


AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                    "expression", "valence", "arousal"]


def make_affectnet(root: Path, n_train: int = 12, n_test: int = 6, seed: int = 0, *,
                   non_emotion_rows: bool = True, columns=AFFECTNET_HEADER) -> Written:
    """AffectNet: training.csv / validation.csv (+ None/Uncertain/Non-face rows) and
    Manually_Annotated_Images/<subdir>/<name>.jpg. Faces range over AffectNet-8 (Contempt included)."""
    written = Written(root)
    images = root / "Manually_Annotated_Images"
    for split, csv_name, n, split_seed in (("train", "training.csv", n_train, seed),
                                            ("test", "validation.csv", n_test, seed + 1)):
        written.paths[split], written.labels[split], va = [], [], []
        rows = []
        for i, face in enumerate(_faces(n, split_seed, classes=AFFECTNET8)):
            rel = f"{i % 3 + 1}/{split}_{i:04d}.jpg"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            face.image.save(images / rel, quality=95)
            rows.append({"subDirectory_filePath": rel, "face_x": 2, "face_y": 2, "face_width": FACE_SIZE - 4,
                         "face_height": FACE_SIZE - 4, "facial_landmarks": "1.0;2.0;3.0;4.0",
                         "expression": AFFECTNET8.index(face.label), "valence": f"{face.valence:.4f}",
                         "arousal": f"{face.arousal:.4f}"})
            written.paths[split].append(rel)
            written.labels[split].append(face.label)
            va.append((face.valence, face.arousal))
        if non_emotion_rows:  # None, Uncertain, Non-face: AffectNet marks their VA with -2
            for code in (8, 9, 10):
                rows.append({**rows[0], "subDirectory_filePath": f"9/skip_{code}.jpg", "expression": code,
                             "valence": -2, "arousal": -2})
        written.va[split] = np.asarray(va, dtype=np.float32)
        with (root / csv_name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return written


FOLDER_ALIASES = {"Happiness": "Happy", "Sadness": "Sad", "Anger": "Angry", "Surprise": "Surprise",
                  "Fear": "Fear", "Disgust": "Disgust", "Neutral": "Neutral"}


def make_folder(root: Path, n_train: int = 10, n_test: int = 5, seed: int = 0, *, manifest: bool = False,
                split_names=("Train", "Val")) -> Written:
    """SFEW style: <root>/Train/<Happy|Sad|Angry|...>/<name>.png, <root>/Val/...; optional manifest.csv
    (filename relative to the split folder, label, valence, arousal) as ml.data.synthetic writes it."""
    written = Written(root)
    for split, folder_name, n, split_seed in (("train", split_names[0], n_train, seed),
                                              ("test", split_names[1], n_test, seed + 1)):
        base = root / folder_name
        written.paths[split], written.labels[split], va, rows = [], [], [], []
        for i, face in enumerate(_faces(n, split_seed)):
            rel = f"{FOLDER_ALIASES[face.label]}/img_{i:04d}.png"
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            face.image.save(base / rel)
            written.paths[split].append(f"{folder_name}/{rel}")
            written.labels[split].append(face.label)
            va.append((face.valence, face.arousal))
            rows.append([rel, face.label, f"{face.valence:.4f}", f"{face.arousal:.4f}"])
        written.va[split] = np.asarray(va, dtype=np.float32)
        if manifest:
            with (base / "manifest.csv").open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["filename", "label", "valence", "arousal"])
                writer.writerows(rows)
    return written


def make_official_csv(path: Path, names, labels, va, *, knn: int = 0) -> Path:
    """The official ULDL training CSV: subDirectory_filePath, expression (AffectNet order), valence, arousal
    [, knn as ';'-separated 0-based row numbers]."""
    va = np.asarray(va, dtype=np.float64)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subDirectory_filePath", "expression", "valence", "arousal"] + (["knn"] if knn else []))
        for i, (name, label) in enumerate(zip(names, labels, strict=False)):
            row = [name, AFFECTNET8.index(label), f"{va[i, 0]:.5f}", f"{va[i, 1]:.5f}"]
            if knn:
                order = np.argsort(np.abs(va - va[i]).sum(1), kind="stable")
                row.append(";".join(str(j) for j in order[order != i][:knn]))
            writer.writerow(row)
    return path
