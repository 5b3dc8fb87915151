"""Build the demo model: a small ULDL network trained on synthetic faces by the project's own code.

    python -m ml.demo_model --out var/models/demo.pt       (what `make demo-model` runs)

Sized to finish in a few minutes on two CPU cores: ResNet-18 at a quarter width (`resnet18_small`),
64 px faces, memory-bank neighbours. Writes a slim checkpoint (no optimiser state) whose metrics hold the
synthetic test accuracy, and keeps the full run (metrics.csv, lambdas.csv) in --work-dir, with the run's
Figure 4 (figure4.png: training faces ordered by λ per given label) and its captioned thumbnails
(figure4_gallery.zip), which the first run registers with the model for the comparison view's uncertainty tab.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ml.checkpoints import load_checkpoint, save_checkpoint
from ml.train import TrainingInputError, default_args, train
from ml.uncertainty import write_figure4

FIGURE4_PER_CLASS = 6
FIGURE4_THUMB = 64  # the demo faces' own size: no upscaling

SLIM_KEYS = ("task", "model", "arch", "classes", "input_size", "normalization", "epoch", "metrics", "method", "args")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the small ULDL demo model on synthetic faces.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="var/models/demo.pt", help="checkpoint to write")
    p.add_argument("--work-dir", default=None, help="training run folder (default: <out folder>/demo_run)")
    p.add_argument("--n", type=int, default=3000, help="synthetic training faces")
    p.add_argument("--test-n", type=int, default=600, help="synthetic test faces")
    p.add_argument("--epochs", type=int, default=8, help="training epochs")
    p.add_argument("--arch", default="resnet18_small", help="backbone")
    p.add_argument("--image-size", type=int, default=64, help="input size in pixels")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (leave cores for the web stack)")
    p.add_argument("--seed", type=int, default=0, help="training and synthetic-face seed")
    return p


def main(args: argparse.Namespace, on_epoch=None) -> dict:
    """Train and write the slim checkpoint; `on_epoch(row)` hears each epoch (row has epoch, epochs, test_acc)."""
    out = Path(args.out)
    work_dir = Path(args.work_dir) if args.work_dir else out.parent / "demo_run"
    started = time.perf_counter()
    train_args = default_args(
        dataset="synthetic", method="uldl", neighbours="bank", arch=args.arch, image_size=args.image_size,
        epochs=args.epochs, lr_steps=[max(1, int(args.epochs * 0.75))], synthetic_n=args.n,
        synthetic_test_n=args.test_n, synthetic_seed=args.seed, seed=args.seed, workers=0,
        threads=args.threads, out=str(work_dir))
    try:
        metrics = train(train_args, on_epoch=on_epoch)
    except TrainingInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    final = load_checkpoint(work_dir / "last.pt")
    slim = {key: final[key] for key in SLIM_KEYS if key in final}
    slim["metrics"] = {**slim["metrics"], "train_seconds": round(time.perf_counter() - started, 1)}
    save_checkpoint(out, slim)
    print(f"demo model: test accuracy {metrics['test_acc']:.3f} on {args.test_n} synthetic faces, "
          f"{slim['metrics']['train_seconds']:.0f}s -> {out}")
    write_figures(out, work_dir=work_dir)
    return slim["metrics"]


def figure4_paths(out: str | Path, work_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Where the demo run keeps its Figure 4 PNG and thumbnail gallery zip, beside lambdas.csv."""
    run = Path(work_dir) if work_dir else Path(out).parent / "demo_run"
    return run / "figure4.png", run / "figure4_gallery.zip"


def write_figures(out: str | Path, *, work_dir: str | Path | None = None) -> tuple[Path, Path] | None:
    """Draw Figure 4 of the demo run (also for a run built before the figures existed). A failure is a note,
    not a failed build: the model is usable without its figure. Returns the two paths, or None."""
    png, gallery = figure4_paths(out, work_dir)
    try:
        write_figure4(png.parent, out=png, gallery=gallery, per_class=FIGURE4_PER_CLASS, thumb=FIGURE4_THUMB)
    except SystemExit:  # ml.uncertainty reported the reason on stderr
        print("note: no Figure 4 for the demo model", file=sys.stderr)
        return None
    return png, gallery


def lambda_export_path(out: str | Path) -> Path:
    """Where the demo run keeps its λ export (Figure 4 data), beside the checkpoint."""
    return Path(out).parent / "demo_run" / "lambdas.csv"


def build(out: str | Path, progress=None) -> Path:
    """Build the demo model with the default settings (the first-run bootstrap calls this in its worker).

    `progress(done, total, message)` hears the steps: preparing the faces, then each epoch.
    """
    args = get_args_parser().parse_args(["--out", str(out)])
    if progress is not None:
        progress(0, args.epochs, f"drawing {args.n + args.test_n} synthetic faces and setting up training")

    def on_epoch(row: dict) -> None:
        if progress is not None:
            progress(int(row["epoch"]), int(row["epochs"]),
                     f"trained epoch {row['epoch']} of {row['epochs']} (test accuracy {row['test_acc']:.2f})")

    main(args, on_epoch=on_epoch)
    return Path(out)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
