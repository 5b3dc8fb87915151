"""Label-noise experiment, the paper's Table 1 protocol: train each method at each noise rate and seed.

    python -m ml.noise --dataset synthetic --rates 0 0.1 0.2 0.3 --seeds 3 --methods ce ls uldl \\
        --out runs/noise --arch resnet18_small --image-size 64 --epochs 8 --lr-steps 6 --synthetic-n 3000

A fraction `rate` of the training labels is flipped uniformly to another class (ml.data.label_noise; the
flips depend on the seed only, so every method sees the same corrupted labels for a given seed). Every
other flag goes to `ml.train` unchanged (see `python -m ml.train --help`). Writes into --out:
results.csv (one row per run: method, rate, seed, test accuracy, lambda AUROC of flipped vs clean labels,
...), table.md (mean accuracy +- standard error over seeds, methods x rates, as Table 1) and runs/<run>/
(metrics.csv, lambdas.csv, run.json; checkpoints only with --keep-checkpoints). Runs already in
results.csv are skipped, so an interrupted experiment continues where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ml.cli import fail, parse_with_train_argv

__all__ = ["RESULT_COLUMNS", "get_args_parser", "parse_args", "summarise", "markdown_table", "paired_differences",
           "paired_table", "main"]

RESULT_COLUMNS = ["method", "rate", "seed", "test_acc", "best_test_acc", "lambda_auroc", "mean_lambda",
                  "train_acc_original", "epochs", "seconds", "run"]
# Set per run by this script; passing them through to ml.train would be silently overridden.
OWNED_TRAIN_OPTIONS = ("noise", "method", "seed", "out", "resume")
# Method names of the grid that are ml.train methods with a fixed option (ULDL's two neighbour modes).
METHOD_VARIANTS = {"uldl_bank": ("uldl", {"neighbours": "bank"}), "uldl_exact": ("uldl", {"neighbours": "exact"}),
                   "uapl_bank": ("uapl", {"neighbours": "bank"}), "uapl_exact": ("uapl", {"neighbours": "exact"})}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ml.noise", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train methods x noise rates x seeds (ULDL Table 1 protocol) and tabulate test accuracy.",
        epilog="Any other flag (--dataset, --data-root, --arch, --epochs, ...) is passed to ml.train; "
               "see `python -m ml.train --help`.")
    p.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3],
                   help="fractions of training labels flipped to another class (default: 0 0.1 0.2 0.3)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per (method, rate): 0..N-1 (default: 3)")
    p.add_argument("--seed-list", type=int, nargs="+", default=None,
                   help="explicit seeds instead of 0..--seeds-1 (each sets training seed and label flips)")
    p.add_argument("--methods", nargs="+", default=["ce", "ls", "uldl"],
                   help="training methods: ml.train --method choices, or uldl_bank / uldl_exact (ULDL with that "
                        "--neighbours mode; default: ce ls uldl)")
    p.add_argument("--out", required=True, help="output folder for results.csv, table.md and runs/")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every run's last.pt/best.pt (by default deleted to save disk)")
    p.add_argument("--rerun", action="store_true", help="train again runs already present in results.csv")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: rewrite table.md and noise.png from results.csv (e.g. after parallel runs)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """This script's flags plus `train_argv`, the rest, for ml.train."""
    return parse_with_train_argv(get_args_parser(), argv)


def _train_namespace(train_argv: list[str]) -> argparse.Namespace:
    from ml.train import get_args_parser as train_parser

    parser = train_parser()
    base = parser.parse_args(train_argv)  # argparse itself reports unknown flags (exit 2)
    defaults = parser.parse_args([])
    clashes = [name for name in OWNED_TRAIN_OPTIONS if getattr(base, name) != getattr(defaults, name)]
    if clashes:
        fail(f"ml.noise sets {', '.join('--' + c for c in clashes)} itself; use --rates, --methods, --seeds/"
              f"--seed-list and --out")
    return base


def run_name(method: str, rate: float, seed: int) -> str:
    return f"{method}_noise{rate:g}_seed{seed}"


def _read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _append_result(path: Path, row: dict) -> None:
    """Append one row under an exclusive lock (two grids may share an output folder, e.g. split seeds)."""
    import fcntl

    with path.open("a", newline="") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        if fh.tell() == 0:
            writer.writeheader()
        writer.writerow(row)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def _number(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v


def summarise(rows: list[dict], column: str = "test_acc") -> dict[tuple[str, float], tuple[float, float, int]]:
    """{(method, rate): (mean, standard error, n seeds)} of `column`, NaN values ignored."""
    groups: dict[tuple[str, float], list[float]] = defaultdict(list)
    for row in rows:
        value = _number(row.get(column))
        if not math.isnan(value):
            groups[(row["method"], float(row["rate"]))].append(value)
    out = {}
    for key, values in groups.items():
        arr = np.asarray(values, dtype=np.float64)
        se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
        out[key] = (float(arr.mean()), se, len(arr))
    return out


def markdown_table(rows: list[dict], column: str = "test_acc", *, percent: bool = True, title: str = "") -> str:
    """Methods x rates table of mean +- standard error (Table 1 layout); empty cells for missing runs."""
    stats = summarise(rows, column)
    if not stats:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in rows if (r["method"], float(r["rate"])) in stats))
    rates = sorted({rate for _, rate in stats})
    scale = 100.0 if percent else 1.0
    header = "| method | " + " | ".join(f"noise {rate:.0%}" if percent else f"noise {rate:g}" for rate in rates) + " |"
    lines = ([f"**{title}**", ""] if title else []) + [header, "|---" * (len(rates) + 1) + "|"]
    for method in methods:
        cells = []
        for rate in rates:
            if (method, rate) not in stats:
                cells.append("")
                continue
            mean, se, n = stats[(method, rate)]
            digits = 2 if percent else 3
            cell = f"{mean * scale:.{digits}f}"
            cell += f" ± {se * scale:.{digits}f}" if not math.isnan(se) else ""
            cells.append(cell + f" (n={n})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(rows: list[dict], baseline: str = "ce", column: str = "test_acc"
                       ) -> dict[tuple[str, float], dict]:
    """Per (method, rate): the mean over seeds of (method - baseline) on the same seed (same label flips),
    its standard error and a two-sided 95% t confidence interval. Seeds missing either run are skipped.
    """
    from scipy.stats import t as student_t

    values: dict[tuple[str, float, int], float] = {}
    for row in rows:
        v = _number(row.get(column))
        if not math.isnan(v):
            values[(row["method"], float(row["rate"]), int(float(row["seed"])))] = v
    out = {}
    for method, rate in sorted({(m, r) for m, r, _ in values if m != baseline}):
        diffs = np.array([values[(method, rate, s)] - values[(baseline, rate, s)]
                          for m, r, s in values if m == method and r == rate and (baseline, rate, s) in values])
        if len(diffs) == 0:
            continue
        mean = float(diffs.mean())
        if len(diffs) > 1:
            se = float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
            half = float(student_t.ppf(0.975, len(diffs) - 1) * se)
        else:
            se = half = float("nan")
        out[(method, rate)] = {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "n": len(diffs),
                               "wins": int((diffs > 0).sum())}
    return out


def paired_table(rows: list[dict], baseline: str = "ce") -> str:
    """Markdown: method - baseline in points, mean [95% CI] (wins/seeds), methods x rates."""
    diffs = paired_differences(rows, baseline)
    if not diffs:
        return ""
    rates = sorted({r for _, r in diffs})
    methods = list(dict.fromkeys(m for m, _ in diffs))
    lines = [f"**paired difference to {baseline} (points): mean [95% CI] (seeds where it is ahead / seeds)**", "",
             "| method | " + " | ".join(f"noise {r:.0%}" for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for method in methods:
        cells = []
        for rate in rates:
            d = diffs.get((method, rate))
            if d is None:
                cells.append("")
                continue
            ci = "" if math.isnan(d["se"]) else f" [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
            cells.append(f"{100 * d['mean']:+.2f}{ci} ({d['wins']}/{d['n']})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_tables(out: Path, rows: list[dict]) -> str:
    text = ["# Label-noise experiment", "",
            "Test accuracy (%) after the last epoch, mean ± standard error over seeds "
            "(training labels flipped uniformly to another class; ULDL Table 1 protocol).", "",
            markdown_table(rows, "test_acc", title="test accuracy (%)")]
    auroc = markdown_table([r for r in rows if float(r["rate"]) > 0], "lambda_auroc", percent=False,
                           title="λ AUROC, clean (high λ) vs flipped (low λ) labels")
    if auroc:
        text += ["", auroc]
    if any(r["method"] == "ce" for r in rows):
        paired = paired_table(rows, "ce")
        if paired:
            text += ["", paired]
    from ml.figures import noise_plot

    plot = noise_plot(summarise(rows, "test_acc"), out / "noise.png")
    if plot:
        text += ["", "![test accuracy vs label noise](noise.png)"]
    body = "\n".join(text) + "\n"
    (out / "table.md").write_text(body)
    return body


def _clean_run_dir(run_dir: Path, args_dict: dict, keep_checkpoints: bool) -> None:
    from ml.checkpoints import plain

    (run_dir / "run.json").write_text(json.dumps(plain(args_dict), indent=2) + "\n")
    if not keep_checkpoints:
        for name in ("last.pt", "best.pt"):
            (run_dir / name).unlink(missing_ok=True)


def main(args: argparse.Namespace) -> list[dict]:
    """Run the grid (skipping runs already recorded), write results.csv and table.md; returns all rows."""
    import copy

    from ml.train import METHODS, TrainingInputError, train

    if not hasattr(args, "train_argv"):
        args.train_argv = []
    if getattr(args, "report_only", False):
        rows = _read_results(Path(args.out) / "results.csv")
        if not rows:
            fail(f"no results.csv with rows in {args.out}")
        print(write_tables(Path(args.out), rows))
        return rows
    unknown = [m for m in args.methods if m not in METHODS and m not in METHOD_VARIANTS]
    if unknown:
        fail(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if any(not 0 <= r < 1 for r in args.rates):
        fail(f"--rates must lie in [0, 1), got {args.rates}")
    seeds = args.seed_list if args.seed_list else list(range(args.seeds))
    if not seeds:
        fail("--seeds must be at least 1")
    base = _train_namespace(args.train_argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.csv"
    rows = [] if args.rerun else _read_results(results_path)
    if args.rerun and results_path.exists():
        results_path.unlink()
    done = {(r["method"], float(r["rate"]), int(r["seed"])) for r in rows}
    # Seed-major order: an interrupted grid leaves whole seeds (every method and rate), which pair up.
    grid = [(m, float(r), int(s)) for s in seeds for r in args.rates for m in args.methods]
    todo = [g for g in grid if g not in done]
    print(f"{len(grid)} runs ({len(grid) - len(todo)} already in {results_path}); training flags: "
          f"{' '.join(args.train_argv) or '(ml.train defaults)'}", flush=True)
    for method, rate, seed in tqdm(todo, desc="noise grid", disable=None):
        run_dir = out / "runs" / run_name(method, rate, seed)
        run_args = copy.deepcopy(base)
        train_method, fixed = METHOD_VARIANTS.get(method, (method, {}))
        run_args.method, run_args.noise, run_args.seed, run_args.out = train_method, rate, seed, str(run_dir)
        for key, value in fixed.items():
            setattr(run_args, key, value)
        run_args.noise_seed = None  # flips follow the seed, identical across methods
        try:
            metrics = train(run_args)
        except TrainingInputError as exc:
            fail(f"{run_name(method, rate, seed)}: {exc}")
        row = {"method": method, "rate": rate, "seed": seed, "test_acc": metrics.get("test_acc"),
               "best_test_acc": metrics.get("best_test_acc"), "lambda_auroc": metrics.get("lambda_auroc"),
               "mean_lambda": metrics.get("mean_lambda"), "train_acc_original": metrics.get("train_acc_original"),
               "epochs": metrics.get("epoch"), "seconds": metrics.get("seconds"),
               "run": str(run_dir.relative_to(out))}
        row = {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        _append_result(results_path, row)
        _clean_run_dir(run_dir, vars(run_args), args.keep_checkpoints)
        rows.append({k: str(v) for k, v in row.items()})
        print(f"{run_name(method, rate, seed)}: test_acc {_number(row['test_acc']):.4f} "
              f"lambda_auroc {_number(row['lambda_auroc']):.3f}", flush=True)
    rows = _read_results(results_path) or rows  # another process may have added seeds to the same folder
    print(write_tables(out, rows))
    return rows


if __name__ == "__main__":
    main(parse_args())
