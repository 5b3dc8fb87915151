"""Train a facial-expression classifier with ULDL (or a baseline) from the command line.

    python -m ml.train --dataset synthetic --method uldl --arch resnet18_small --epochs 8 --out runs/demo
    python -m ml.train --dataset rafdb --data-root data/rafdb --method uldl --arch resnet18 --out runs/raf

torchvision-references style: `get_args_parser()` + `main(args)`; `train(args)` returns the final metrics
and raises `TrainingInputError` on bad input (main turns that into `error: ...` and exit status 2).
Writes into --out: last.pt and best.pt (see ml/checkpoints.py), metrics.csv (one row per epoch) and, for
methods with an uncertainty factor, lambdas.csv (every training image's lam, given/original label, flip).
"""
from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ml.checkpoints import DEFAULT_NORMALIZATION, CheckpointError, load_checkpoint, plain, save_checkpoint
from ml.ldl import LazySGD, NeighbourBank, ULDLObjective, knn_in_va, lambda_auroc
from ml.losses import onehot_targets, smoothed_targets, soft_cross_entropy
from ml.models import BACKBONES, build_model
from ml.models.uapl import ATTENTION_TARGETS, DEFAULT_ATTENTION_TARGET, DEFAULT_PATCHES, PATCH_MODES
from ml.predictor import resolve_device

__all__ = ["TrainingInputError", "get_args_parser", "default_args", "train", "main", "METHODS"]

METHODS = ("uldl", "uapl", "ce", "ls")
LDL_METHODS = ("uldl", "uapl")  # methods with the ULDL target, lam and neighbours
DATASETS = ("synthetic", "rafdb", "affectnet", "folder")
# Reference input sizes (ULDL ref §2.2); small backbones default to 64 px for CPU runs.
DEFAULT_IMAGE_SIZE = {"resnet18": 224, "resnet50": 112, "resnet18_small": 64, "resnet18_half": 64}
METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_acc", "mean_lambda", "lr", "epoch_seconds",
                  "train_acc_original", "lambda_auroc"]


class TrainingInputError(ValueError):
    """Bad user input (missing data, unknown name, inconsistent resume): reported without a traceback."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train an expression classifier with ULDL, UAPL, CE or label smoothing.",
                                add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="synthetic", choices=DATASETS, help="dataset loader (ml.data.build_dataset)")
    g.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic)")
    g.add_argument("--va-csv", default=None,
                   help="valence/arousal for the training images (official ULDL CSV layout, e.g. pseudo-VA from "
                        "`python -m ml.va predict`); default: <data-root>/pseudo_va.csv when present")
    g.add_argument("--affectnet-7", action="store_true", help="AffectNet: drop Contempt (7 classes)")
    g.add_argument("--image-size", type=int, default=None,
                   help="input size in pixels; default: 224 resnet18, 112 resnet50, 64 small backbones (ref §2.2)")
    g.add_argument("--noise", type=float, default=0.0,
                   help="fraction of training labels flipped uniformly to another class (paper's Table 1)")
    g.add_argument("--noise-seed", type=int, default=None, help="seed of the label flips (default: --seed)")
    g.add_argument("--synthetic-n", type=int, default=2000, help="synthetic training faces")
    g.add_argument("--synthetic-test-n", type=int, default=500, help="synthetic test faces")
    g.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic face generator")
    g.add_argument("--synthetic-ambiguity", type=float, default=0.3,
                   help="synthetic faces: 0 = one clear emotion, 1 = wide blends (harder)")
    g.add_argument("--synthetic-occlusion-rate", type=float, default=0.0,
                   help="synthetic faces: probability of a random occluder (sunglasses, mask, hand) per face")
    g.add_argument("--synthetic-test-occlusion-rate", type=float, default=None,
                   help="occluder probability of the synthetic test faces (default: --synthetic-occlusion-rate)")
    g.add_argument("--synthetic-cache", default=None,
                   help="folder to cache drawn synthetic faces as .npz (drawing costs ~10 ms per face)")
    g.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    g.add_argument("--soft-labels", default=None,
                   help="train on human label distributions: a study export's soft_labels.csv (image, n_votes, "
                        "p_<label>); replaces --dataset (see ml/README.md, 'Training on human distributions')")
    g.add_argument("--soft-labels-root", "--image-root", dest="soft_labels_root", default=None,
                   help="folder the soft-label file's image paths are relative to (the app's MEDIA_ROOT); "
                        "default: the file's folder")
    g.add_argument("--soft-labels-test", default=None,
                   help="held-out soft_labels.csv for test_acc (default: the training images, unaugmented)")
    m = p.add_argument_group("model and method")
    m.add_argument("--method", default="uldl", choices=METHODS,
                   help="uldl; uapl (ULDL target + patch attention on the feature map); ce; ls (label smoothing)")
    m.add_argument("--arch", default="resnet18", choices=list(BACKBONES), help="backbone")
    m.add_argument("--pretrained", default=None, help="local torchvision-style backbone state dict (strict=False)")
    m.add_argument("--neighbours", default="bank", choices=("exact", "bank"),
                   help="exact: forward the K neighbour images every step (official code); "
                        "bank: read neighbours' latest features/predictions from a memory bank")
    m.add_argument("--k", type=int, default=8, help="neighbours in valence-arousal space (ref §2.7)")
    m.add_argument("--gamma", type=float, default=0.01, help="weight of the discriminative loss (ref §6.3)")
    m.add_argument("--push-scale", type=float, default=None,
                   help="D in the centre push exp(-||ci-cj||^2/D) (ref §6.2); default: the feature size")
    m.add_argument("--lambda-init", type=float, default=0.5, help="initial uncertainty LOGIT, lam=sigmoid (ref §5)")
    m.add_argument("--lambda-lr", type=float, default=10.0, help="SGD learning rate of the lam logits (ref §5)")
    m.add_argument("--lambda-momentum", type=float, default=0.0,
                   help="lazy momentum of the lam SGD (0 RAF-DB config, 0.9 AffectNet config; ref §5)")
    m.add_argument("--uapl-grid", type=int, default=3, help="UAPL: regional patches per side of the feature map")
    m.add_argument("--uapl-patches", default=DEFAULT_PATCHES, choices=PATCH_MODES,
                   help="UAPL: how patches are cut: pool = pool the stride-1 last stage's map; stem/layer1 = crop "
                        "the map after that stage and run the later stages on each region alone (local patches)")
    m.add_argument("--uapl-attention-target", default=DEFAULT_ATTENTION_TARGET, choices=ATTENTION_TARGETS,
                   help="UAPL: attention pulled towards each patch's support for the assisted label (absolute), "
                        "that support over the image's best patch's (relative), or over the batch's mean support "
                        "at the same patch position, capped at 1 (position)")
    m.add_argument("--uapl-global-feature", action=argparse.BooleanOptionalAction, default=False,
                   help="UAPL: the image feature is the whole face's feature plus the attention-weighted mean of the "
                        "patches (default: the weighted mean alone)")
    m.add_argument("--uapl-whole-face-branch", action=argparse.BooleanOptionalAction, default=False,
                   help="UAPL: a whole-face network (ULDL's) beside the patches; the image's logits are its logits "
                        "plus the weighted patches' logits, and its own logits also learn the ULDL target")
    m.add_argument("--uapl-ldl-branch", default="fused", choices=("fused", "whole"),
                   help="UAPL with --uapl-whole-face-branch: which logits ULDL's objective (lam, centre loss, the "
                        "neighbours' predictions) sees: the fused output (fused) or the whole-face branch alone, "
                        "exactly as ULDL, the fused output then learning the detached target (whole)")
    m.add_argument("--uapl-uniform-attention", action=argparse.BooleanOptionalAction, default=False,
                   help="UAPL ablation: every patch weighs 1 (the attention and its loss are off), to measure what "
                        "the attention adds")
    m.add_argument("--uapl-patch-weight", type=float, default=1.0,
                   help="UAPL task guidance: weight of the per-patch soft CE against the assisted label")
    m.add_argument("--uapl-attention-weight", type=float, default=1.0,
                   help="UAPL task guidance: weight of the attention-vs-patch-support BCE")
    m.add_argument("--label-smoothing", type=float, default=0.1, help="epsilon for --method ls")
    m.add_argument("--class-weights", default="none", choices=("none", "balanced"),
                   help="per-sample CE weights; balanced = N/(C*n_c) as the AffectNet config (ref §6.1)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=60, help="training epochs (ref §7: 60)")
    o.add_argument("--batch-size", type=int, default=32, help="batch size (ref §7: 32)")
    o.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (ref §7: 1e-3 for resnet18)")
    o.add_argument("--lr-steps", type=int, nargs="*", default=[10, 20, 40],
                   help="epochs after which the lr is multiplied by --lr-decay (ref §7)")
    o.add_argument("--lr-decay", type=float, default=0.1, help="step decay factor (ref §7)")
    o.add_argument("--limit-batches", type=int, default=None, help="stop each epoch after this many batches (smoke runs)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="seed for torch, numpy, random and the DataLoader")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    r.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="CUDA only: mixed precision (torch.autocast float16 + GradScaler); ignored on CPU")
    r.add_argument("--curves", action=argparse.BooleanOptionalAction, default=True,
                   help="write curves.png (loss, accuracy, mean lambda per epoch; needs matplotlib)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    r.add_argument("--out", default="runs/uldl", help="output folder for checkpoints and CSVs")
    r.add_argument("--resume", default=None, help="a last.pt (or its folder) to continue from")
    r.add_argument("--init", default=None,
                   help="start from this checkpoint's model weights (fine-tuning; fresh optimiser, epoch 1); its "
                        "arch, classes and input size are used")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: only on a terminal)")
    return p


def default_args(**overrides) -> argparse.Namespace:
    """The CLI defaults as a Namespace, with keyword overrides (for ml.noise and notebooks)."""
    args = get_args_parser().parse_args([])
    for key, value in overrides.items():
        if not hasattr(args, key):
            raise TypeError(f"unknown training option {key!r}")
        setattr(args, key, value)
    return args


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# ---------------------------------------------------------------- data


@dataclass
class Data:
    train: Dataset
    test: Dataset
    neighbour_view: Dataset  # training images with the neighbour transform (no random erasing)
    classes: list[str]
    original_labels: np.ndarray
    flipped: np.ndarray
    normalization: dict = field(default_factory=lambda: dict(DEFAULT_NORMALIZATION))


def _build_split(args, split: str, *, train: bool, **extra) -> Dataset:
    from ml.data import build_dataset

    kwargs = dict(train=train, image_size=args.image_size, **extra)
    if args.dataset == "synthetic":
        kwargs.update(n=args.synthetic_n if split == "train" else args.synthetic_test_n, seed=args.synthetic_seed,
                      **synthetic_options(args, split))
    if getattr(args, "va_csv", None) and split == "train":
        kwargs["va_csv"] = args.va_csv
    if getattr(args, "affectnet_7", False) and args.dataset == "affectnet":
        kwargs["affectnet_7"] = True
    return build_dataset(args.dataset, args.data_root, split, **kwargs)


def synthetic_options(args, split: str) -> dict:
    """build_dataset keywords for the synthetic faces' difficulty (ambiguity, random occluders)."""
    rate = getattr(args, "synthetic_occlusion_rate", 0.0) or 0.0
    test_rate = getattr(args, "synthetic_test_occlusion_rate", None)
    if split != "train" and test_rate is not None:
        rate = test_rate
    return {"ambiguity": float(getattr(args, "synthetic_ambiguity", 0.3)), "occlusion_rate": float(rate),
            "cache_dir": getattr(args, "synthetic_cache", None)}


def load_data(args) -> Data:
    """Train/test datasets, label noise applied to the training labels (which the loaders keep mutable)."""
    if getattr(args, "soft_labels", None):
        return _load_soft_label_data(args)
    if args.dataset != "synthetic":
        if not args.data_root:
            raise TrainingInputError(f"--data-root is required for --dataset {args.dataset}")
        if not Path(args.data_root).exists():
            raise TrainingInputError(f"data root not found: {args.data_root}")
    try:
        train_set = _build_split(args, "train", train=True)
        test_set = _build_split(args, "test", train=False)
        neighbour_view = _build_split(args, "train", train=True, erasing=False) \
            if args.method in LDL_METHODS and args.neighbours == "exact" else train_set
    except (OSError, KeyError, ValueError) as exc:
        raise TrainingInputError(f"cannot load {args.dataset}: {exc}") from None
    classes = list(train_set.classes)
    if list(test_set.classes) != classes:
        raise TrainingInputError(f"train and test classes differ: {classes} vs {list(test_set.classes)}")
    if len(train_set) == 0 or len(test_set) == 0:
        raise TrainingInputError(f"empty dataset: {len(train_set)} training and {len(test_set)} test images")
    original = np.asarray(train_set.labels, dtype=np.int64).copy()
    flipped = np.zeros(len(original), dtype=bool)
    if args.noise:
        if not 0 < args.noise < 1:
            raise TrainingInputError(f"--noise must be in [0, 1), got {args.noise}")
        from ml.data.label_noise import apply_label_noise

        seed = args.seed if args.noise_seed is None else args.noise_seed
        noisy, flipped = apply_label_noise(original, args.noise, len(classes), seed)
        train_set.labels[:] = np.asarray(noisy, dtype=np.int64)
        if neighbour_view is not train_set:
            neighbour_view.labels[:] = train_set.labels
        flipped = np.asarray(flipped, dtype=bool)
    norm = getattr(train_set, "normalization", None) or DEFAULT_NORMALIZATION
    return Data(train_set, test_set, neighbour_view, classes, original, flipped,
                {"mean": [float(x) for x in norm["mean"]], "std": [float(x) for x in norm["std"]]})


def _load_soft_label_data(args) -> Data:
    """soft_labels.csv images with their human distributions (ml.data.soft_labels) as train/test sets."""
    from ml.data.base import DatasetError
    from ml.data.soft_labels import load_soft_labels
    from ml.data.transforms import build_transform

    init = getattr(args, "init_checkpoint", None) or {}
    classes, norm = init.get("classes"), init.get("normalization") or dict(DEFAULT_NORMALIZATION)
    try:
        def split(path, train):
            return load_soft_labels(path, classes=classes, root=args.soft_labels_root,
                                    transform=build_transform(args.image_size, train=train, normalization=norm))

        train_set = split(args.soft_labels, True)
        test_set = split(args.soft_labels_test or args.soft_labels, False)
    except DatasetError as exc:
        raise TrainingInputError(str(exc)) from None
    labels = np.asarray(train_set.labels, dtype=np.int64).copy()
    return Data(train_set, test_set, train_set, list(train_set.classes), labels, np.zeros(len(labels), dtype=bool),
                {"mean": [float(x) for x in norm["mean"]], "std": [float(x) for x in norm["std"]]})


class WithNeighbourImages(Dataset):
    """Adds `neighbours` (K, 3, H, W) to every training item: exact mode's B*K extra images (ref §3.3)."""

    def __init__(self, anchors: Dataset, neighbour_view: Dataset, knn_index: torch.Tensor):
        self.anchors, self.neighbour_view, self.knn_index = anchors, neighbour_view, knn_index

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.anchors[i])
        item["neighbours"] = torch.stack([self.neighbour_view[int(j)]["image"] for j in self.knn_index[i]])
        return item


def _image_name(dataset: Dataset, i: int) -> str:
    for attr in ("paths", "files", "filenames"):
        names = getattr(dataset, attr, None)
        if names is not None:
            return str(names[i])
    image_path = getattr(dataset, "image_path", None)
    return str(image_path(i)) if callable(image_path) else ""


def _class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)  # ref §6.1 balanced
    return torch.tensor(weights, dtype=torch.float32)


# ---------------------------------------------------------------- training


@dataclass
class Run:
    args: argparse.Namespace
    data: Data
    device: torch.device
    model: torch.nn.Module
    arch: str
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: DataLoader
    test_loader: DataLoader
    objective: ULDLObjective | None = None
    lambda_optimizer: LazySGD | None = None
    bank: NeighbourBank | None = None
    warm_loader: DataLoader | None = None
    class_weights: torch.Tensor | None = None
    scaler: torch.amp.GradScaler | None = None
    amp: bool = False
    start_epoch: int = 1
    best_acc: float = -1.0
    best_epoch: int = 0
    history: list = field(default_factory=list)


def _loader(dataset, args, *, shuffle: bool, generator=None, drop_single: bool = False) -> DataLoader:
    # BatchNorm cannot normalise a batch of one image at a 1x1 feature map; only such a last batch is dropped.
    drop_last = drop_single and len(dataset) % args.batch_size == 1
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, num_workers=args.workers,
                      generator=generator, worker_init_fn=_seed_worker, drop_last=drop_last,
                      persistent_workers=args.workers > 0, pin_memory=False)


def setup(args) -> Run:
    """Everything before the first step; bad input raises TrainingInputError."""
    if getattr(args, "init", None):
        _read_init(args)
    if args.image_size is None:
        args.image_size = DEFAULT_IMAGE_SIZE.get(args.arch, 224)
    for name in ("epochs", "batch_size", "k", "image_size"):
        if getattr(args, name) < 1:
            raise TrainingInputError(f"--{name.replace('_', '-')} must be at least 1")
    if args.workers < 0:
        raise TrainingInputError("--workers must be >= 0")
    if args.pretrained and not Path(args.pretrained).is_file():
        raise TrainingInputError(f"pretrained weights not found: {args.pretrained}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise TrainingInputError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = seed_everything(args.seed)
    data = load_data(args)
    num_classes = len(data.classes)
    arch = ("uapl_" if args.method == "uapl" else "") + args.arch
    try:
        model = build_model(arch, num_classes, pretrained=args.pretrained,
                            **({"grid": args.uapl_grid, "patches": args.uapl_patches,
                                 "global_feature": args.uapl_global_feature,
                                 "whole_face_branch": args.uapl_whole_face_branch,
                                 "uniform_attention": args.uapl_uniform_attention}
                               if args.method == "uapl" else {})).to(device)
    except ValueError as exc:
        raise TrainingInputError(str(exc)) from None
    if getattr(args, "init_checkpoint", None):
        _load_init_weights(model, args.init_checkpoint, data.classes)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    labels = np.asarray(data.train.labels, dtype=np.int64)
    class_weights = _class_weights(labels, num_classes).to(device) if args.class_weights == "balanced" else None
    params = list(model.parameters())
    run_kwargs = {}
    if (args.method == "uapl" and getattr(args, "uapl_ldl_branch", "fused") == "whole"
            and not args.uapl_whole_face_branch):
        raise TrainingInputError("--uapl-ldl-branch whole needs --uapl-whole-face-branch")
    if args.method in LDL_METHODS and getattr(args, "soft_labels", None):
        from ml.soft_targets import HumanTargetObjective

        if args.method == "uapl":
            raise TrainingInputError("--soft-labels trains uldl, ce or ls; uapl is not supported")
        objective = HumanTargetObjective(n=len(data.train), feature_dim=model.feature_dim, num_classes=num_classes,
                                         gamma=args.gamma, lambda_init=args.lambda_init, class_weights=class_weights,
                                         push_scale=getattr(args, "push_scale", None)).to(device)
        run_kwargs["objective"] = objective
        run_kwargs["lambda_optimizer"] = LazySGD(objective.factors.parameters(), lr=args.lambda_lr,
                                                 momentum=args.lambda_momentum)
        train_set = data.train
    elif args.method in LDL_METHODS:
        va = getattr(data.train, "va", None)
        if va is None:
            raise TrainingInputError(f"{args.dataset} training set has no valence/arousal; ULDL needs VA for its "
                                     "neighbours (make pseudo-VA with `python -m ml.va`) or use --method ce")
        try:
            knn_index, knn_sim = knn_in_va(va, args.k)
        except ValueError as exc:
            raise TrainingInputError(str(exc)) from None
        objective = ULDLObjective(knn_index=knn_index, knn_similarity=knn_sim, given_labels=torch.from_numpy(labels),
                                  feature_dim=model.feature_dim, num_classes=num_classes, gamma=args.gamma,
                                  lambda_init=args.lambda_init, class_weights=class_weights,
                                  push_scale=getattr(args, "push_scale", None)).to(device)
        params += list(objective.model_parameters())  # ref §3.1: ASN is trained by the main Adam
        run_kwargs["objective"] = objective
        run_kwargs["lambda_optimizer"] = LazySGD(objective.factors.parameters(), lr=args.lambda_lr,
                                                 momentum=args.lambda_momentum)  # ULDL ref §5: own SGD, lr 10
        if args.neighbours == "bank":
            run_kwargs["bank"] = NeighbourBank(len(data.train), model.feature_dim, num_classes, device)
            run_kwargs["warm_loader"] = _loader(data.neighbour_view, args, shuffle=False)
            train_set = data.train
        else:
            train_set = WithNeighbourImages(data.train, data.neighbour_view, knn_index)
    else:
        train_set = data.train
    optimizer = torch.optim.Adam(params, lr=args.lr, eps=1e-7)  # ULDL ref §7: Keras Adam defaults, eps 1e-7
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=sorted(args.lr_steps),
                                                     gamma=args.lr_decay)  # ULDL ref §7: step decay per epoch
    amp = bool(getattr(args, "amp", True)) and device.type == "cuda"
    run = Run(args=args, data=data, device=device, model=model, arch=arch, optimizer=optimizer,
              scheduler=scheduler, class_weights=class_weights, amp=amp,
              scaler=torch.amp.GradScaler(device.type, enabled=amp),
              train_loader=_loader(train_set, args, shuffle=True, generator=generator, drop_single=True),
              test_loader=_loader(data.test, args, shuffle=False), **run_kwargs)
    if args.resume:
        _resume(run, args.resume)
    return run


def _read_init(args) -> None:
    """--init: read the starting checkpoint; its arch and input size become this run's."""
    if getattr(args, "resume", None):
        raise TrainingInputError("--init and --resume exclude each other (--resume continues a run)")
    try:
        ckpt = load_checkpoint(args.init)
    except CheckpointError as exc:
        raise TrainingInputError(f"cannot start from --init: {exc}") from None
    arch = ckpt["arch"]
    if arch.startswith("uapl_") != (args.method == "uapl"):
        raise TrainingInputError(f"--init {args.init} is {arch}; it cannot start a --method {args.method} run")
    args.arch = arch.removeprefix("uapl_")
    if args.image_size is None:
        args.image_size = int(ckpt["input_size"])
    args.init_checkpoint = ckpt


def _load_init_weights(model: torch.nn.Module, ckpt: dict, classes: list[str]) -> None:
    if list(ckpt["classes"]) != list(classes):
        raise TrainingInputError(f"--init has classes {ckpt['classes']}, the data {classes}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise TrainingInputError(f"--init weights do not fit {ckpt['arch']}: {str(exc)[:300]}") from None


def _resume(run: Run, path: str) -> None:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise TrainingInputError(f"cannot resume: {exc}") from None
    if ckpt["arch"] != run.arch or ckpt["classes"] != run.data.classes:
        raise TrainingInputError(f"cannot resume: {path} is {ckpt['arch']} on {ckpt['classes']}, "
                                 f"this run is {run.arch} on {run.data.classes}")
    if "optimizer" not in ckpt:
        raise TrainingInputError(f"cannot resume: {path} has no optimiser state (use a last.pt)")
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    if run.objective is not None and "objective" in ckpt:
        # Deviation: the reference does not checkpoint lam (ref §5, §9.11); restoring it makes resume continue.
        run.objective.load_state_dict(ckpt["objective"])
        run.lambda_optimizer.load_state_dict(ckpt["lambda_optimizer"])
    run.start_epoch = int(ckpt["epoch"]) + 1
    run.history = list(ckpt.get("history") or [])
    run.best_acc = float(ckpt["metrics"].get("best_test_acc", -1.0))
    run.best_epoch = int(ckpt["metrics"].get("best_epoch", 0))


def _autocast(run: Run):
    """Mixed precision on CUDA (float16 autocast); a no-op context elsewhere or with --no-amp."""
    return torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.amp)


def _backward_and_step(run: Run, loss: torch.Tensor, optimizers: list) -> None:
    """GradScaler backward and steps (a plain backward/step when AMP is off: the scaler is disabled)."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    for opt in optimizers:
        run.scaler.step(opt)
    run.scaler.update()


def _step_ldl(run: Run, batch: dict, x: torch.Tensor, labels: torch.Tensor, index: torch.Tensor):
    """One ULDL step in the reference's order (ref §7): neighbours, anchors, loss, Adam, lam SGD, centres.

    UAPL adds its task guidance loss (patch predictions and attention against the same target).
    """
    model, objective = run.model, run.objective
    if "target" in batch:  # --soft-labels: the human distribution replaces the neighbours' context
        with _autocast(run):
            features, logits = model(x)
            out = objective(features=features.float(), logits=logits.float(), labels=labels, index=index,
                            human=batch["target"].to(run.device).float())
        _backward_and_step(run, out["loss"], [run.optimizer, run.lambda_optimizer])
        objective.update_centres(out["centre_rows"])
        return out["loss"], logits, out["lam"]
    with _autocast(run):
        if run.bank is None:  # exact: neighbours through the same model, train mode, no gradient (ref §3.3)
            nb = batch["neighbours"].to(run.device, non_blocking=True)
            b, k = nb.shape[:2]
            with torch.no_grad():  # --uapl-ldl-branch whole: the neighbours through the whole-face branch
                nf, nlogits = (model.whole_face if _uapl_ldl_on_whole_face(run) else model)(nb.flatten(0, 1))
            neighbour_features = nf.float().view(b, k, -1)
            neighbour_probs = nlogits.float().softmax(dim=1).view(b, k, -1)
        else:
            neighbour_features, neighbour_probs = run.bank.lookup(objective.neighbours(index)[0])
        patch_out = model.forward_patches(x) if run.args.method == "uapl" else None
        features, logits = (patch_out["features"], patch_out["logits"]) if patch_out else model(x)
        ldl_on_whole = _uapl_ldl_on_whole_face(run)
        if ldl_on_whole:  # ULDL's objective and bank see the whole-face branch only, exactly as ULDL would
            logits = patch_out["whole_logits"]
        out = objective(features=features.float(), logits=logits.float(), labels=labels, index=index,
                        neighbour_features=neighbour_features, neighbour_probs=neighbour_probs)
        loss = out["loss"]
        if ldl_on_whole:  # the fused output (what predicts) learns the resulting target, which it cannot move
            loss = loss + soft_cross_entropy(patch_out["logits"].float(), out["target"].detach())
        if patch_out is not None:
            from ml.models.uapl import task_guidance_loss

            guidance = task_guidance_loss(patch_out["patch_logits"], patch_out["attention"], out["target"],
                                          patch_weight=run.args.uapl_patch_weight,
                                          attention_weight=(0.0 if run.args.uapl_uniform_attention
                                                            else run.args.uapl_attention_weight),
                                          attention_target=run.args.uapl_attention_target)
            loss = loss + guidance["loss"]
            if "whole_logits" in patch_out and not ldl_on_whole:  # the whole-face branch learns the target alone too
                loss = loss + soft_cross_entropy(patch_out["whole_logits"].float(), out["target"].detach())
    _backward_and_step(run, loss, [run.optimizer, run.lambda_optimizer])
    objective.update_centres(out["centre_rows"])
    if run.bank is not None:
        run.bank.update(index, features.float(), logits.float().softmax(dim=1))
    return loss, (patch_out["logits"] if ldl_on_whole else logits), out["lam"]


def _uapl_ldl_on_whole_face(run: Run) -> bool:
    """--uapl-ldl-branch whole: lam, the centres and the neighbours' predictions come from the whole-face branch."""
    return getattr(run.args, "uapl_ldl_branch", "fused") == "whole" and run.args.method == "uapl"


def _step_plain(run: Run, x: torch.Tensor, labels: torch.Tensor, human: torch.Tensor | None = None):
    with _autocast(run):
        _, logits = run.model(x)
    num_classes = logits.shape[1]
    if human is not None:  # --soft-labels: cross entropy against the human distribution
        from ml.soft_targets import plain_soft_target

        target = plain_soft_target(human.to(run.device).float(), run.args.method, run.args.label_smoothing)
    elif run.args.method == "ls":
        target = smoothed_targets(labels, num_classes, run.args.label_smoothing)
    else:
        target = onehot_targets(labels, num_classes)
    weights = None if run.class_weights is None else run.class_weights[labels]
    loss = soft_cross_entropy(logits.float(), target, weights)
    _backward_and_step(run, loss, [run.optimizer])
    return loss, logits, None


def train_one_epoch(run: Run, epoch: int) -> dict:
    run.model.train()
    if run.objective is not None:
        run.objective.train()
    original = torch.from_numpy(run.data.original_labels).to(run.device)
    total = correct = correct_original = 0
    loss_sum = lam_sum = 0.0
    bar = tqdm(run.train_loader, desc=f"epoch {epoch}", leave=False, disable=_no_progress(run.args))
    for step, batch in enumerate(bar):
        if run.args.limit_batches and step >= run.args.limit_batches:
            break
        x = batch["image"].to(run.device, non_blocking=True)
        if run.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        labels = batch["label"].to(run.device).long()
        index = batch["index"].to(run.device).long()
        if run.objective is not None:
            loss, logits, lam = _step_ldl(run, batch, x, labels, index)
            lam_sum += float(lam.sum())
        else:
            loss, logits, _ = _step_plain(run, x, labels, batch.get("target"))
        pred = logits.detach().argmax(dim=1)
        n = len(labels)
        total += n
        loss_sum += float(loss.detach()) * n
        correct += int((pred == labels).sum())
        correct_original += int((pred == original[index]).sum())
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    return {"train_loss": loss_sum / max(total, 1), "train_acc": correct / max(total, 1),
            "train_acc_original": correct_original / max(total, 1),
            "mean_lambda": lam_sum / total if run.objective is not None and total else float("nan")}


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device, *, disable: bool | None = None,
             amp: bool = False) -> float:
    """Top-1 accuracy of a plain classifier pass (ref §8: eval mode, softmax, argmax; no neighbours)."""
    model.eval()
    correct = total = 0
    for batch in tqdm(loader, desc="test", leave=False, disable=disable):
        x = batch["image"].to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
            _, logits = model(x)
        labels = batch["label"].to(device)
        correct += int((logits.argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def _no_progress(args) -> bool | None:
    return None if args.progress is None else not args.progress


# ---------------------------------------------------------------- outputs


def _checkpoint(run: Run, epoch: int, metrics: dict, *, full: bool) -> dict:
    payload = {"task": "expression", "model": run.model.state_dict(), "arch": run.arch,
               "classes": list(run.data.classes), "input_size": int(run.args.image_size),
               "normalization": run.data.normalization, "epoch": epoch, "metrics": plain(metrics),
               "method": run.args.method, "args": plain({k: v for k, v in vars(run.args).items() if k != "init_checkpoint"})}
    if full:
        payload.update(optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
                       history=plain(run.history))
        if run.objective is not None:
            payload.update(objective=run.objective.state_dict(),
                           lambda_optimizer=run.lambda_optimizer.state_dict())
    return payload


def _write_metrics(path: Path, history: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def _write_lambdas(path: Path, run: Run, lam: np.ndarray) -> None:
    """Figure 4 data: one row per training image, in dataset order."""
    classes, given = run.data.classes, np.asarray(run.data.train.labels)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "path", "given_label", "original_label", "flipped", "lambda"])
        for i in range(len(lam)):
            writer.writerow([i, _image_name(run.data.train, i), classes[given[i]],
                             classes[run.data.original_labels[i]], int(run.data.flipped[i]), f"{lam[i]:.6f}"])


def fit(run: Run, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """The epoch loop; returns the final metrics. `on_epoch(row)` hears each epoch's metrics (progress)."""
    args, out = run.args, Path(run.args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if run.bank is not None:
        run.bank.warm(run.model.whole_face if _uapl_ldl_on_whole_face(run) else run.model, run.warm_loader,
                      run.device)
    final = {}
    for epoch in range(run.start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        lr = run.optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(run, epoch)
        run.scheduler.step()
        test_acc = evaluate(run.model, run.test_loader, run.device, disable=_no_progress(args), amp=run.amp)
        row = {"epoch": epoch, **stats, "test_acc": test_acc, "lr": lr,
               "epoch_seconds": round(time.perf_counter() - t0, 3), "lambda_auroc": float("nan")}
        lam = run.objective.factors.values().cpu().numpy() if run.objective is not None else None
        if lam is not None and run.data.flipped.any():
            row["lambda_auroc"] = lambda_auroc(lam, run.data.flipped)
        run.history.append(row)
        if test_acc > run.best_acc:
            run.best_acc, run.best_epoch = test_acc, epoch
        final = {**row, "best_test_acc": run.best_acc, "best_epoch": run.best_epoch,
                 "noise": args.noise, "method": args.method, "arch": run.arch,
                 "train_images": len(run.data.train), "test_images": len(run.data.test)}
        save_checkpoint(out / "last.pt", _checkpoint(run, epoch, final, full=True))
        if run.best_epoch == epoch:
            save_checkpoint(out / "best.pt", _checkpoint(run, epoch, final, full=False))
        _write_metrics(out / "metrics.csv", run.history)
        if lam is not None:
            _write_lambdas(out / "lambdas.csv", run, lam)
        print(f"epoch {epoch}/{args.epochs} loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f} "
              f"test_acc {test_acc:.4f} mean_lambda {row['mean_lambda']:.4f} lr {lr:.2e} "
              f"{row['epoch_seconds']:.1f}s", flush=True)
        if on_epoch is not None:
            on_epoch({**row, "epochs": args.epochs})
    final["seconds"] = round(time.perf_counter() - started, 2)
    final["out"] = str(out)
    if getattr(args, "curves", True) and run.history:
        from ml.figures import training_curves

        mode = f", {args.neighbours} neighbours" if run.objective is not None else ""
        final["curves"] = training_curves(run.history, out / "curves.png",
                                          title=f"{args.method} ({run.arch}{mode}, noise {args.noise:g})")
    return final


def train(args: argparse.Namespace, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train per `args` (see get_args_parser); returns the final metrics, e.g. test_acc, lambda_auroc.

    Raises TrainingInputError on bad input. `on_epoch(row)` is called after each epoch (progress reports).
    """
    return fit(setup(args), on_epoch=on_epoch)


def main(args: argparse.Namespace) -> dict:
    """CLI entry: like train(), but bad input prints `error: ...` and exits with status 2."""
    try:
        run = setup(args)
    except TrainingInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return fit(run)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
