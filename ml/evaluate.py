"""Evaluate a checkpoint on a dataset split: accuracy, mean per-class accuracy, confusion matrix.

    python -m ml.evaluate --checkpoint runs/raf/best.pt --dataset rafdb --data-root data/rafdb
    python -m ml.evaluate --checkpoint runs/aff/best.pt --dataset rafdb --data-root data/rafdb --out raf.json

Classes are matched by name (ml.labels), so a model can be tested on a dataset with another label set
(the paper's cross-dataset protocol, Table 2): classes the model has but the dataset lacks are masked out
of the argmax; images of classes the dataset has but the model lacks are excluded and reported.
Like the reference (ULDL ref §8) this is a plain classifier pass: eval mode, softmax, argmax.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.cli import argument_parser
from ml.labels import canonical_label

__all__ = ["EvaluationError", "ClassAlignment", "align_classes", "score_predictions", "format_confusion",
           "ResizedImages", "image_batches", "predict_dataset", "evaluate_checkpoint", "write_results",
           "get_args_parser", "main"]


class EvaluationError(ValueError):
    """Evaluation impossible for a reason the user can fix (no shared class, unknown output format...)."""


@dataclass(frozen=True)
class ClassAlignment:
    """How a model's classes meet a dataset's, by canonical name."""

    model_columns: list[int]     # model column of each shared class, in dataset order
    dataset_indices: list[int]   # dataset index of each shared class
    names: list[str]             # shared class names (dataset's spelling)
    masked: list[str]            # model classes the dataset lacks (removed from the argmax)
    excluded: list[str]          # dataset classes the model lacks (their images are not scored)


def align_classes(model_classes: Sequence[str], dataset_classes: Sequence[str]) -> ClassAlignment:
    """Match class names canonically; raise EvaluationError if nothing is shared."""
    model_pos = {canonical_label(c): i for i, c in enumerate(model_classes)}
    data_names = {canonical_label(c) for c in dataset_classes}
    columns, indices, names, excluded = [], [], [], []
    for j, name in enumerate(dataset_classes):
        column = model_pos.get(canonical_label(name))
        if column is None:
            excluded.append(name)
        else:
            columns.append(column)
            indices.append(j)
            names.append(name)
    if not names:
        raise EvaluationError(f"the model's classes {list(model_classes)} and the dataset's {list(dataset_classes)} "
                              "share no class name")
    masked = [c for c in model_classes if canonical_label(c) not in data_names]
    return ClassAlignment(columns, indices, names, masked, excluded)


def score_predictions(probs: np.ndarray, labels: np.ndarray, model_classes: Sequence[str],
                      dataset_classes: Sequence[str]) -> dict:
    """Metrics from model probabilities (N, C_model) and dataset labels (N,), classes matched by name.

    Returns a JSON-ready dict: accuracy, mean_class_accuracy (over shared classes with images), n (scored
    images), excluded_images, classes, per_class {name: {n, correct, accuracy}}, confusion (rows true,
    columns predicted, both in `classes` order), masked_model_classes, excluded_dataset_classes, predicted
    (dataset class index per input image, -1 for excluded ones).
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != len(labels) or probs.shape[1] != len(model_classes):
        raise EvaluationError(f"probabilities {probs.shape} do not fit {len(labels)} labels and "
                              f"{len(model_classes)} model classes")
    align = align_classes(model_classes, dataset_classes)
    shared = {d: k for k, d in enumerate(align.dataset_indices)}  # dataset index -> shared position
    position = np.array([shared.get(int(y), -1) for y in labels], dtype=np.int64)
    scored = position >= 0
    # Table 2 protocol: the argmax runs over the shared classes only.
    pred_pos = probs[:, align.model_columns].argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    k = len(align.names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (position[scored], pred_pos[scored]), 1)
    per_class, accs = {}, []
    for i, name in enumerate(align.names):
        n_i = int(confusion[i].sum())
        acc = confusion[i, i] / n_i if n_i else float("nan")
        per_class[name] = {"n": n_i, "correct": int(confusion[i, i]), "accuracy": acc}
        if n_i:
            accs.append(acc)
    n = int(scored.sum())
    predicted = np.where(scored, np.array(align.dataset_indices)[pred_pos] if len(labels) else -1, -1)
    excluded_values, excluded_sizes = np.unique(labels[~scored], return_counts=True)
    excluded_counts = {dataset_classes[int(y)]: int(c) for y, c in zip(excluded_values, excluded_sizes, strict=True)}
    return {
        "accuracy": float(np.trace(confusion) / n) if n else float("nan"),
        "mean_class_accuracy": float(np.mean(accs)) if accs else float("nan"),
        "n": n, "excluded_images": int((~scored).sum()), "excluded_by_class": excluded_counts,
        "classes": list(align.names), "per_class": per_class, "confusion": confusion.tolist(),
        "masked_model_classes": list(align.masked), "excluded_dataset_classes": list(align.excluded),
        "predicted": predicted.astype(int).tolist(),
    }


def format_confusion(results: dict) -> str:
    """The confusion matrix as a fixed-width table (rows: true class, columns: predicted) with accuracies."""
    classes, confusion = results["classes"], results["confusion"]
    short = [c[:9] for c in classes]
    width = max(9, *(len(s) for s in short))
    corner = "true \\ pred"
    head = f"{corner:<{width + 2}}" + "".join(f"{s:>{width + 1}}" for s in short) + f"{'n':>7}{'acc':>8}"
    lines = [head]
    for name, s, row in zip(classes, short, confusion, strict=False):
        stats = results["per_class"][name]
        acc = "-" if math.isnan(stats["accuracy"]) else f"{stats['accuracy']:.3f}"
        lines.append(f"{s:<{width + 2}}" + "".join(f"{v:>{width + 1}}" for v in row) + f"{stats['n']:>7}{acc:>8}")
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    lines = [f"accuracy {results['accuracy']:.4f}  mean class accuracy {results['mean_class_accuracy']:.4f}  "
             f"({results['n']} images)"]
    if results["masked_model_classes"]:
        lines.append(f"model classes the dataset lacks, masked out of the argmax: "
                     f"{', '.join(results['masked_model_classes'])}")
    if results["excluded_dataset_classes"]:
        counts = ", ".join(f"{k} {v}" for k, v in results["excluded_by_class"].items())
        lines.append(f"dataset classes the model lacks, images excluded: "
                     f"{', '.join(results['excluded_dataset_classes'])} ({counts or 'no images'})")
    return lines


class ResizedImages:
    """Dataset view yielding uint8 (S, S, 3) arrays resized as the Predictor would, so workers decode."""

    def __init__(self, dataset, size: int):
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> np.ndarray:
        from PIL import Image

        image = self.dataset.load_image(i).convert("RGB")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BILINEAR)
        return np.array(image, dtype=np.uint8)  # a writable copy for torch's collate


def image_batches(dataset, size: int, *, batch_size: int = 64, workers: int = 0, progress: bool | None = None,
                  desc: str = "images"):
    """Yield lists of uint8 (size, size, 3) arrays in dataset order, decoded by `workers` processes."""
    import torch
    from tqdm import tqdm

    loader = torch.utils.data.DataLoader(ResizedImages(dataset, size), batch_size=batch_size, shuffle=False,
                                         num_workers=workers)
    for batch in tqdm(loader, desc=desc, leave=False, disable=None if progress is None else not progress):
        yield list(batch.numpy())


def predict_dataset(predictor, dataset, *, batch_size: int = 64, workers: int = 0,
                    progress: bool | None = None) -> np.ndarray:
    """(N, C_model) probabilities for every image of `dataset`, in dataset order."""
    out = [np.zeros((0, len(predictor.classes)), dtype=np.float32)]
    for images in image_batches(dataset, predictor.input_size, batch_size=batch_size, workers=workers,
                                progress=progress, desc="evaluate"):
        out.append(predictor.predict(images, batch_size=batch_size))
    return np.concatenate(out)


def _build_eval_dataset(args, model_classes: Sequence[str], image_size: int):
    from ml.data import build_dataset

    extra = {}
    if args.dataset == "synthetic":
        from ml.data.synthetic import EMOTIONS

        drawable = all(canonical_label(c) in EMOTIONS for c in model_classes)
        extra = {"n": args.synthetic_n, "seed": args.synthetic_seed,
                 "classes": [canonical_label(c) for c in model_classes] if drawable else None}
    return build_dataset(args.dataset, args.data_root, args.split, train=False, image_size=image_size,
                         va_csv=args.va_csv, affectnet_7=args.affectnet_7, csv_file=args.csv_file, **extra)


def evaluate_checkpoint(args: argparse.Namespace) -> dict:
    """Load the checkpoint and dataset named in `args`, predict, score; returns the results dict."""
    from ml.predictor import Predictor, resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    predictor = Predictor.from_checkpoint(args.checkpoint, device=device)
    dataset = _build_eval_dataset(args, predictor.classes, predictor.input_size)
    if args.limit:
        dataset.select(np.arange(min(args.limit, len(dataset))))
    probs = predict_dataset(predictor, dataset, batch_size=args.batch_size, workers=args.workers,
                            progress=args.progress)
    results = score_predictions(probs, dataset.labels, predictor.classes, dataset.classes)
    results.update(checkpoint=str(args.checkpoint), arch=predictor.arch, model_classes=list(predictor.classes),
                   dataset=args.dataset, split=args.split, data_root=args.data_root,
                   dataset_classes=list(dataset.classes), input_size=predictor.input_size)
    if args.per_image:
        _write_per_image(Path(args.per_image), dataset, probs, predictor.classes, results["predicted"])
    return results


def _write_per_image(path: Path, dataset, probs: np.ndarray, model_classes, predicted) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "path", "label", "predicted"] + [f"p_{c}" for c in model_classes])
        for i, (name, y) in enumerate(zip(dataset.paths, dataset.labels, strict=False)):
            pred = dataset.classes[predicted[i]] if predicted[i] >= 0 else ""
            writer.writerow([i, name, dataset.classes[int(y)], pred] + [f"{p:.5f}" for p in probs[i]])


def write_results(path: str | Path, results: dict) -> Path:
    """.json: everything but per-image predictions; .csv: the confusion matrix with per-class and overall rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        payload = {k: v for k, v in results.items() if k != "predicted"}
        path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True) + "\n")
    elif path.suffix.lower() == ".csv":
        classes = results["classes"]
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["true\\pred", *classes, "n", "accuracy"])
            for name, row in zip(classes, results["confusion"], strict=False):
                stats = results["per_class"][name]
                writer.writerow([name, *row, stats["n"], f"{stats['accuracy']:.6f}"])
            writer.writerow(["accuracy", results["accuracy"]])
            writer.writerow(["mean_class_accuracy", results["mean_class_accuracy"]])
    else:
        raise EvaluationError(f"--out must end in .json or .csv, got {path.name}")
    return path


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argument_parser("ml.evaluate", "Accuracy, mean per-class accuracy and confusion matrix of a checkpoint "
                        "on a dataset split; classes matched by name (cross-dataset ready).", add_help=add_help)
    p.add_argument("--checkpoint", required=True, help="checkpoint file (best.pt, last.pt or a slim model)")
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "rafdb", "affectnet", "folder"),
                   help="dataset loader (layouts: ml/DATA.md)")
    p.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic)")
    p.add_argument("--split", default="test", help="split to evaluate: test, train (val, all where the layout has it)")
    p.add_argument("--va-csv", default=None, help="CSV with valence/arousal to attach (not needed for accuracy)")
    p.add_argument("--affectnet-7", action="store_true", help="AffectNet without Contempt (the ULDL configs' classes)")
    p.add_argument("--csv-file", default=None, help="AffectNet-layout CSV to read instead of the split's own")
    p.add_argument("--synthetic-n", type=int, default=500, help="synthetic test faces (ml.train's default test set)")
    p.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic faces")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images (smoke runs)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--workers", type=int, default=2, help="DataLoader processes decoding images")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: $MODEL_DEVICE or cuda if available)")
    p.add_argument("--out", default=None, help="write the results to this .json or .csv file")
    p.add_argument("--per-image", default=None, help="also write per-image labels and probabilities to this CSV")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bar (default: only on a terminal)")
    return p


def main(args: argparse.Namespace) -> dict:
    """Print the metrics and confusion matrix; bad input prints `error: ...` and exits with status 2."""
    from ml.checkpoints import CheckpointError
    from ml.data.base import DatasetError

    try:
        if args.batch_size < 1 or args.workers < 0 or (args.limit is not None and args.limit < 1):
            raise EvaluationError("--batch-size and --limit must be at least 1, --workers at least 0")
        if args.out and Path(args.out).suffix.lower() not in (".json", ".csv"):
            raise EvaluationError(f"--out must end in .json or .csv, got {args.out}")
        results = evaluate_checkpoint(args)
        if args.out:
            write_results(args.out, results)
    except (CheckpointError, DatasetError, EvaluationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{args.checkpoint} on {args.dataset}/{args.split}")
    for line in summary_lines(results):
        print(line)
    print(format_confusion(results))
    if args.out:
        print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
