"""Epoch cost of ULDL's two neighbour modes relative to plain cross entropy, measured in one run.

    python -m bench.uldl_epoch --arch resnet18_small --image-size 64 --n 1024 --threads 2

Builds the same synthetic training set once per method, then times whole training epochs (no evaluation)
for: CE baseline, ULDL with the memory bank, ULDL exact (neighbour images forwarded every step, as the
official code). Prints seconds and ratios to CE; the bank's one-off warm-up pass is reported separately.
Absolute times depend on the machine; only the ratios are meant to be compared.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ml.train import default_args, setup, train_one_epoch


def time_method(args, method: str, neighbours: str) -> dict:
    run = setup(default_args(**{**args, "method": method, "neighbours": neighbours}))
    warm = 0.0
    if run.bank is not None:
        t0 = time.perf_counter()
        run.bank.warm(run.model, run.warm_loader, run.device)
        warm = time.perf_counter() - t0
    seconds = []
    for epoch in range(1, args["epochs"] + 1):
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_one_epoch(run, epoch)
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    return {"epoch_s": statistics.median(seconds), "warm_s": warm, "epochs": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18_small", help="backbone")
    p.add_argument("--image-size", type=int, default=64, help="input size in pixels")
    p.add_argument("--n", type=int, default=1024, help="synthetic training faces")
    p.add_argument("--batch-size", type=int, default=32, help="batch size")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per method (median reported)")
    p.add_argument("--limit-batches", type=int, default=None, help="batches per timed epoch (default: all)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--skip-exact", action="store_true", help="leave out ULDL-exact (the slow one)")
    a = p.parse_args()
    common = dict(dataset="synthetic", arch=a.arch, image_size=a.image_size, synthetic_n=a.n, synthetic_test_n=16,
                  batch_size=a.batch_size, epochs=a.epochs, limit_batches=a.limit_batches, workers=a.workers,
                  threads=a.threads, device=a.device, progress=False, out="/tmp/uldl_bench")
    modes = [("CE", "ce", "bank"), ("ULDL-bank", "uldl", "bank")]
    if not a.skip_exact:
        modes.append(("ULDL-exact", "uldl", "exact"))
    results = {}
    for label, method, neighbours in modes:
        results[label] = time_method(common, method, neighbours)
        print(f"{label:<11} epoch {results[label]['epoch_s']:.2f}s  (epochs: "
              f"{', '.join(f'{s:.2f}' for s in results[label]['epochs'])})"
              + (f"  warm-up {results[label]['warm_s']:.2f}s" if results[label]["warm_s"] else ""), flush=True)
    base = results["CE"]["epoch_s"]
    device = "cuda" if (a.device or "").startswith("cuda") or (a.device is None and torch.cuda.is_available()) else "cpu"
    print(f"\n{a.arch} {a.image_size}px, {a.n} images, batch {a.batch_size}, {device}, "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    print("| mode | epoch s | ratio to CE |\n|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['epoch_s']:.2f} | {r['epoch_s'] / base:.2f}x |")
    if "ULDL-bank" in results:
        r = results["ULDL-bank"]
        print(f"bank warm-up (once per run): {r['warm_s']:.2f}s = {r['warm_s'] / base:.2f} CE epochs")


if __name__ == "__main__":
    main()
