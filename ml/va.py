"""Pseudo valence-arousal: train a VA regressor where VA exists, predict it where it does not.

    python -m ml.va train --dataset synthetic --arch resnet18_small --image-size 64 --epochs 6 --out runs/va
    python -m ml.va train --dataset affectnet --data-root data/affectnet --arch resnet18 --out runs/va_aff
    python -m ml.va predict --checkpoint runs/va_aff/va.pt --dataset rafdb --data-root data/rafdb \\
        --splits train test --out data/rafdb/pseudo_va.csv

ULDL needs VA for every training image to find its neighbours (ULDL ref §2.6: RAF-DB's VA in the official
CSV is model-predicted). `predict` writes the official CSV layout (subDirectory_filePath, expression,
valence, arousal [, knn]) plus label and split columns; `--va-csv FILE` of ml.data attaches it by file
name, and a file named pseudo_va.csv in a dataset's root is attached automatically. `expression` uses
the official class order (AffectNet ids 0..7; -1 for a class outside AffectNet-8); `--knn K` adds the
official code's `knn` column (K nearest rows in VA, L1, self excluded) for a single split.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

from ml.labels import AFFECTNET8, canonical_label

__all__ = ["VAInputError", "concordance", "va_metrics", "train_va", "predict_va", "build_demo", "get_args_parser",
           "main"]

DATASETS = ("synthetic", "rafdb", "affectnet", "folder")
DEFAULT_IMAGE_SIZE = {"resnet18": 224, "resnet50": 112, "resnet18_small": 64, "resnet18_half": 64}


class VAInputError(ValueError):
    """Bad input to ml.va (no VA to learn from, bad split, ...): `error: ...` and exit status 2."""


def concordance(pred: np.ndarray, true: np.ndarray) -> float:
    """Lin's concordance correlation coefficient, the usual AffectNet VA metric. (N,), (N,) -> scalar."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if len(pred) < 2:
        return float("nan")
    cov = np.mean((pred - pred.mean()) * (true - true.mean()))
    denom = pred.var() + true.var() + (pred.mean() - true.mean()) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def va_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    """RMSE, MAE, Pearson r and CCC of valence and arousal over rows whose true VA is known. (N, 2) x2 -> dict."""
    known = ~np.isnan(true).any(axis=1)
    pred, true = pred[known], true[known]
    out = {"n": int(known.sum())}
    for k, name in enumerate(("valence", "arousal")):
        out[f"rmse_{name}"] = float(np.sqrt(np.mean((pred[:, k] - true[:, k]) ** 2))) if len(true) else float("nan")
        out[f"mae_{name}"] = float(np.mean(np.abs(pred[:, k] - true[:, k]))) if len(true) else float("nan")
        out[f"pearson_{name}"] = (float(np.corrcoef(pred[:, k], true[:, k])[0, 1])
                                  if len(true) > 1 and pred[:, k].std() > 0 and true[:, k].std() > 0 else float("nan"))
        out[f"ccc_{name}"] = concordance(pred[:, k], true[:, k])
    return out


def _device(name):
    from ml.predictor import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise VAInputError(str(exc)) from None


def _dataset(args, split: str, *, train: bool, image_size: int):
    from ml.data import build_dataset

    extra = {}
    if args.dataset == "synthetic":
        from ml.train import synthetic_options

        extra = {"n": args.synthetic_n if split == "train" else args.synthetic_test_n, "seed": args.synthetic_seed,
                 **synthetic_options(args, split)}
    return build_dataset(args.dataset, args.data_root, split, train=train, image_size=image_size,
                         va_csv=args.va_csv, affectnet_7=getattr(args, "affectnet_7", False), **extra)


# ---------------------------------------------------------------- train


def train_va(args: argparse.Namespace, on_epoch=None) -> dict:
    """Train VARegressor (ml.models) with MSE on known VA; writes <out>/va.pt and metrics.csv each epoch.

    `on_epoch(metrics)` hears each epoch (metrics has epoch, epochs, ccc_valence, ccc_arousal, ...)."""
    import torch
    from tqdm import tqdm

    from ml.checkpoints import plain, save_checkpoint
    from ml.models import build_model
    from ml.models.va import va_loss

    if args.image_size is None:
        args.image_size = DEFAULT_IMAGE_SIZE.get(args.arch, 224)
    if min(args.epochs, args.batch_size, args.image_size) < 1 or args.workers < 0:
        raise VAInputError("--epochs, --batch-size, --image-size must be at least 1 and --workers at least 0")
    if args.pretrained and not Path(args.pretrained).is_file():
        raise VAInputError(f"pretrained weights not found: {args.pretrained}")
    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed % 2**32)
    train_set = _dataset(args, "train", train=True, image_size=args.image_size)
    test_set = _dataset(args, "test", train=False, image_size=args.image_size)
    known = 0 if train_set.va is None else int((~np.isnan(train_set.va).any(axis=1)).sum())
    if known == 0:
        raise VAInputError(f"the {args.dataset} training set has no valence/arousal to learn from "
                           "(use synthetic or AffectNet, or give --va-csv)")
    model = build_model(f"va_{args.arch}", pretrained=args.pretrained).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-7)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=sorted(args.lr_steps), gamma=args.lr_decay)
    generator = torch.Generator().manual_seed(args.seed)
    drop_last = len(train_set) % args.batch_size == 1  # BatchNorm cannot train on a batch of one image
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                               num_workers=args.workers, generator=generator, drop_last=drop_last)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=args.batch_size, num_workers=args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    disable = None if args.progress is None else not args.progress
    history, started, metrics = [], time.perf_counter(), {}
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum = seen = 0
        for step, batch in enumerate(tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=disable)):
            if args.limit_batches and step >= args.limit_batches:
                break
            x, target = batch["image"].to(device), batch["va"].to(device)
            loss = va_loss(model(x), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(x)
            seen += len(x)
        scheduler.step()
        pred, true = _predict_tensors(model, test_loader, device, disable)
        metrics = {"epoch": epoch, "train_mse": loss_sum / max(seen, 1), **va_metrics(pred, true),
                   "epoch_seconds": round(time.perf_counter() - t0, 3)}
        history.append(metrics)
        if on_epoch is not None:
            on_epoch({**metrics, "epochs": args.epochs})
        save_checkpoint(out / "va.pt", {
            "task": "va", "model": model.state_dict(), "arch": f"va_{args.arch}", "input_size": int(args.image_size),
            "normalization": train_set.normalization, "epoch": epoch, "metrics": plain(metrics),
            "method": "va", "args": plain(vars(args)), "source": args.dataset})
        _write_csv(out / "metrics.csv", history)
        print(f"epoch {epoch}/{args.epochs} train_mse {metrics['train_mse']:.4f} "
              f"test rmse v/a {metrics['rmse_valence']:.3f}/{metrics['rmse_arousal']:.3f} "
              f"ccc v/a {metrics['ccc_valence']:.3f}/{metrics['ccc_arousal']:.3f}", flush=True)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    metrics["checkpoint"] = str(out / "va.pt")
    return metrics


def _predict_tensors(model, loader, device, disable) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from tqdm import tqdm

    model.eval()
    preds, trues = [np.zeros((0, 2), np.float32)], [np.zeros((0, 2), np.float32)]
    with torch.inference_mode():
        for batch in tqdm(loader, desc="test", leave=False, disable=disable):
            preds.append(model(batch["image"].to(device)).float().cpu().numpy())
            trues.append(batch["va"].numpy())
    return np.concatenate(preds), np.concatenate(trues)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


# ---------------------------------------------------------------- predict


def _knn_column(va: np.ndarray, k: int) -> list[str]:
    from ml.ldl import knn_in_va

    try:
        index, _ = knn_in_va(va, k)
    except ValueError as exc:  # too few images for k neighbours
        raise VAInputError(str(exc)) from None
    return [";".join(str(int(j)) for j in row) for row in index.numpy()]


def predict_va(args: argparse.Namespace) -> dict:
    """Predict VA for every image of the chosen splits and write the official-layout CSV."""
    from ml.evaluate import image_batches
    from ml.predictor import VAPredictor

    if args.knn and len(args.splits) != 1:
        raise VAInputError("--knn lists neighbours by row of one training CSV: give exactly one split")
    if args.batch_size < 1 or args.workers < 0 or args.knn < 0:
        raise VAInputError("--batch-size must be at least 1, --workers and --knn at least 0")
    predictor = VAPredictor.from_checkpoint(args.checkpoint, device=_device(args.device))
    rows, report = [], {}
    for split in args.splits:
        dataset = _dataset(args, split, train=False, image_size=predictor.input_size)
        truth = None if dataset.va is None else dataset.va.copy()
        preds = [np.zeros((0, 2), np.float32)]
        for images in image_batches(dataset, predictor.input_size, batch_size=args.batch_size,
                                    workers=args.workers, progress=args.progress, desc=f"predict {split}"):
            preds.append(predictor.predict_va(images, batch_size=args.batch_size))
        va = np.concatenate(preds)
        order = {canonical_label(c): i for i, c in enumerate(AFFECTNET8)}
        for i, path in enumerate(dataset.paths):
            name = dataset.classes[int(dataset.labels[i])]
            rows.append({"subDirectory_filePath": path, "expression": order.get(canonical_label(name), -1),
                         "valence": f"{va[i, 0]:.5f}", "arousal": f"{va[i, 1]:.5f}", "label": name, "split": split,
                         "_va": va[i]})
        report[split] = {"images": len(dataset)}
        if truth is not None and not np.isnan(truth).all():
            report[split].update(va_metrics(va, truth))
    columns = ["subDirectory_filePath", "expression", "valence", "arousal"]
    if args.knn:
        for row, knn in zip(rows, _knn_column(np.stack([r["_va"] for r in rows]), args.knn), strict=False):
            row["knn"] = knn
        columns.append("knn")
    columns += ["label", "split"]
    if getattr(args, "report", None):
        import json

        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    for split, stats in report.items():
        line = f"{split}: {stats['images']} images"
        if "ccc_valence" in stats:
            line += (f"; against the dataset's own VA: rmse v/a {stats['rmse_valence']:.3f}/"
                     f"{stats['rmse_arousal']:.3f}, mae v/a {stats['mae_valence']:.3f}/{stats['mae_arousal']:.3f}, "
                     f"pearson v/a {stats['pearson_valence']:.3f}/{stats['pearson_arousal']:.3f}, "
                     f"ccc v/a {stats['ccc_valence']:.3f}/{stats['ccc_arousal']:.3f}")
        print(line)
    print(f"pseudo-VA for {len(rows)} images -> {out}")
    return {"out": str(out), "rows": len(rows), "splits": report}


# ---------------------------------------------------------------- the first run's VA model

# ~35 s of one idle core (ml/RESULTS.md): synthetic test CCC about 0.8 valence, 0.6 arousal
DEMO_TRAIN_ARGV = ["train", "--dataset", "synthetic", "--arch", "resnet18_small", "--image-size", "48",
                   "--epochs", "8", "--lr", "3e-3", "--lr-steps", "6", "--synthetic-n", "2000",
                   "--synthetic-test-n", "300", "--threads", "1", "--workers", "0", "--no-progress"]


def build_demo(out: str | Path, progress=None) -> Path:
    """Train the small synthetic-face VA regressor the first run registers (study.services.first_run).

    `progress(done, total, message)` hears each epoch. Writes a slim checkpoint (no run history) at `out`.
    """
    from ml.checkpoints import load_checkpoint, save_checkpoint

    out = Path(out)
    args = get_args_parser().parse_args([*DEMO_TRAIN_ARGV, "--out", str(out.parent / f"{out.stem}_run")])
    if progress is not None:
        progress(0, args.epochs, f"drawing {args.synthetic_n + args.synthetic_test_n} synthetic faces")

    def on_epoch(row: dict) -> None:
        if progress is not None:
            progress(int(row["epoch"]), int(row["epochs"]), f"trained epoch {row['epoch']} of {row['epochs']} "
                     f"(CCC valence {row['ccc_valence']:.2f}, arousal {row['ccc_arousal']:.2f})")

    train_va(args, on_epoch=on_epoch)
    ckpt = load_checkpoint(Path(args.out) / "va.pt", task="va")
    ckpt["training_data"] = "EmoStudy synthetic faces"
    ckpt["training_domain"] = "synthetic"
    save_checkpoint(out, {key: value for key, value in ckpt.items() if key != "format"})
    return out


# ---------------------------------------------------------------- CLI


def _data_flags(p: argparse.ArgumentParser, *, default_dataset: str) -> None:
    p.add_argument("--dataset", default=default_dataset, choices=DATASETS, help="dataset loader (ml/DATA.md)")
    p.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic)")
    p.add_argument("--va-csv", default=None, help="CSV of valence/arousal to attach to the dataset by file name")
    p.add_argument("--affectnet-7", action="store_true", help="AffectNet without Contempt")
    p.add_argument("--synthetic-n", type=int, default=2000, help="synthetic training faces")
    p.add_argument("--synthetic-test-n", type=int, default=500, help="synthetic test faces")
    p.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic faces")
    p.add_argument("--synthetic-ambiguity", type=float, default=0.3, help="synthetic faces' ambiguity (ml.train)")
    p.add_argument("--synthetic-occlusion-rate", type=float, default=0.0,
                   help="synthetic faces: probability of a random occluder per face (ml.train)")
    p.add_argument("--synthetic-cache", default=None, help="folder to cache drawn synthetic faces (.npz)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader processes")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: $MODEL_DEVICE or cuda if available)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: only on a terminal)")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.va", description="Pseudo valence-arousal for ULDL: train a "
                                     "VA regressor, then predict VA for a dataset without it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict}",
                                help="train: fit a regressor; predict: write pseudo-VA CSV")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    t = sub.add_parser("train", help="train a VA regressor on a dataset with VA", formatter_class=fmt)
    _data_flags(t, default_dataset="synthetic")
    from ml.models.backbones import BACKBONES

    t.add_argument("--arch", default="resnet18_small", choices=list(BACKBONES), help="backbone")
    t.add_argument("--pretrained", default=None, help="local torchvision-style backbone state dict")
    t.add_argument("--image-size", type=int, default=None, help="input size; default 224 resnet18, 112 resnet50, "
                                                                  "64 small backbones")
    t.add_argument("--epochs", type=int, default=10, help="training epochs")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--lr-steps", type=int, nargs="*", default=[], help="epochs after which lr *= --lr-decay")
    t.add_argument("--lr-decay", type=float, default=0.1, help="step decay factor")
    t.add_argument("--limit-batches", type=int, default=None, help="stop each epoch after this many batches")
    t.add_argument("--seed", type=int, default=0, help="seed for torch and numpy")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--out", default="runs/va", help="output folder for va.pt and metrics.csv")
    p = sub.add_parser("predict", help="write pseudo-VA for a dataset (official ULDL CSV layout)",
                       formatter_class=fmt)
    _data_flags(p, default_dataset="rafdb")
    p.add_argument("--checkpoint", required=True, help="VA regressor checkpoint (va.pt from `train`)")
    p.add_argument("--splits", nargs="+", default=["train", "test"], help="splits to predict, written to one CSV")
    p.add_argument("--knn", type=int, default=0, help="also write the official `knn` column with K neighbours "
                                                      "(one split only; 0 = off)")
    p.add_argument("--report", default=None, help="also write the per-split accuracy of the pseudo-VA against the "
                                                   "dataset's own VA (where known) as JSON")
    p.add_argument("--out", required=True, help="CSV to write; name it <data-root>/pseudo_va.csv to have it "
                                                "attached automatically")
    return parser


def main(args: argparse.Namespace) -> dict:
    """Dispatch to train or predict; bad input prints `error: ...` and exits with status 2."""
    from ml.checkpoints import CheckpointError
    from ml.data.base import DatasetError

    try:
        return train_va(args) if args.command == "train" else predict_va(args)
    except (VAInputError, DatasetError, CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(get_args_parser().parse_args())
