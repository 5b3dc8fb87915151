"""Occlusion experiment: UAPL vs ULDL vs CE on synthetic faces with random occluders, and patch attention.

    python -m ml.occlusion --out runs/occlusion --methods ce uldl uapl --seeds 5 --synthetic-occlusion-rate 0.5 \\
        --synthetic-n 1000 --arch resnet18_small --image-size 48 --batch-size 16 --epochs 25 --lr-steps 20 \\
        --va-csv PSEUDO_VA.csv   # UAPL flags (--uapl-patches, --uapl-attention-target, ...) go to ml.train

Trains every (method, seed) with ml.train on faces where each face has an occluder (sunglasses, mask or a
hand; ml.data.synthetic) with probability --synthetic-occlusion-rate, then on the test faces (same rate
unless --synthetic-test-occlusion-rate) reports accuracy on occluded and on clean faces. For UAPL it also
scores how well low patch attention flags occluded patches: a patch counts as occluded when at least
--occluded-fraction of its image region lies inside the generator's occluder box; AUROC of (1 - weight)
over the patches of occluded test faces, and over the patches of all test faces (where a fixed
"always distrust the mouth" prior would be penalised by the clean faces), and within each patch position
(does a region's weight drop when that region is covered; mean over positions). The occluder boxes are
only used here, never in training. Every other flag goes to ml.train.

Writes results.csv (one row per run), table.md (mean +- standard error, paired UAPL - ULDL and
UAPL - CE differences with 95% CIs), accuracy.png, attention.png (occluded test faces with their patch
weights) and runs/<method>_seed<seed>/ (metrics.csv, lambdas.csv, run.json, curves.png; for UAPL
attention.csv, every test patch's weight and occlusion flag). Runs already in results.csv are skipped;
--report-only rewrites table.md from results.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from ml.cli import fail, parse_with_train_argv

__all__ = ["patch_occlusion", "auroc", "within_position_auroc", "evaluate_occlusion", "write_attention_csv",
           "get_args_parser", "parse_args", "main"]

RESULT_COLUMNS = ["method", "seed", "test_acc", "acc_occluded", "acc_clean", "n_occluded", "n_clean",
                  "attention_auroc_occluded_faces", "attention_auroc_all_faces", "mean_attention_occluded",
                  "mean_attention_visible", "epochs", "seconds", "run", "attention_auroc_within_position",
                  "acc_occluded_whole_face_branch", "acc_occluded_patch_branch", "noise"]
OWNED_TRAIN_OPTIONS = ("method", "seed", "out", "resume", "noise")


def patch_occlusion(boxes: np.ndarray, patch_boxes: list[tuple[float, float, float, float]], *,
                    scale: float = 1.0, min_fraction: float = 0.3) -> np.ndarray:
    """(N, 4) occluder boxes (x0, y0, x1, y1; -1 = none) -> (N, P) bool: patch p of image n is occluded.

    A patch is occluded when at least `min_fraction` of its area lies inside the box; `scale` maps box
    pixels (drawn face size) to the model's input pixels, where patch_boxes live.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    out = np.zeros((len(boxes), len(patch_boxes)), dtype=bool)
    has = boxes[:, 0] >= 0
    b = boxes * scale
    for p, (x0, y0, x1, y1) in enumerate(patch_boxes):
        w = np.clip(np.minimum(b[:, 2], x1) - np.maximum(b[:, 0], x0), 0, None)
        h = np.clip(np.minimum(b[:, 3], y1) - np.maximum(b[:, 1], y0), 0, None)
        out[:, p] = has & (w * h >= min_fraction * (x1 - x0) * (y1 - y0))
    return out


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie) (Mann-Whitney); NaN if a class is empty."""
    from scipy.stats import rankdata

    scores, positives = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positives, dtype=bool).ravel()
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def within_position_auroc(weights: np.ndarray, flags: np.ndarray, *, min_count: int = 5) -> float:
    """Mean over patch positions of the AUROC of (1 - weight) for "this position is occluded" across images.

    Does the weight of a region drop when that region is covered? Unlike the pooled AUROC it does not mix
    positions, so a region that is always uninformative (a forehead) is only compared with itself.
    Positions with fewer than `min_count` occluded or visible images are left out; NaN if none is left.
    """
    weights, flags = np.asarray(weights, dtype=np.float64), np.asarray(flags, dtype=bool)
    values = [auroc(1 - weights[:, p], flags[:, p]) for p in range(flags.shape[1])
              if min(flags[:, p].sum(), (~flags[:, p]).sum()) >= min_count]
    return float(np.mean(values)) if values else float("nan")


def write_attention_csv(path: Path, dataset, weights: np.ndarray, flags: np.ndarray) -> None:
    """One row per (test image, patch): label, whether the face has an occluder, patch weight, patch occluded."""
    has = np.asarray(dataset.occluder_boxes)[:, 0] >= 0
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "label", "face_occluded", "patch", "weight", "occluded"])
        for i in range(len(weights)):
            for p in range(weights.shape[1]):
                writer.writerow([i, int(dataset.labels[i]), int(has[i]), p, f"{weights[i, p]:.5f}", int(flags[i, p])])


def evaluate_occlusion(model, dataset, device, *, image_size: int, min_fraction: float = 0.3,
                       batch_size: int = 64) -> dict:
    """Accuracy on occluded/clean test faces; for a UAPLNet also patch attention vs occluder boxes."""
    import torch

    boxes = np.asarray(dataset.occluder_boxes)
    occluded = boxes[:, 0] >= 0
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    has_patches = hasattr(model, "forward_patches")
    has_attention = has_patches and not getattr(model, "uniform_attention", False)  # the ablation has none to score
    preds, weights, branch_preds = [], [], {"whole_face": [], "patch": []}
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            x = batch["image"].to(device)
            if has_patches:
                out = model.forward_patches(x)
                logits = out["logits"]
                weights.append(out["attention"].float().cpu().numpy())
                if "whole_logits" in out:  # each branch alone: what does the other one add?
                    branch_preds["whole_face"].append(out["whole_logits"].argmax(1).cpu().numpy())
                    branch_preds["patch"].append((logits - out["whole_logits"]).argmax(1).cpu().numpy())
            else:
                _, logits = model(x)
            preds.append(logits.argmax(1).cpu().numpy())
    pred = np.concatenate(preds)
    labels = np.asarray(dataset.labels)
    correct = pred == labels
    out = {"test_acc": float(correct.mean()), "acc_occluded": float(correct[occluded].mean()) if occluded.any()
           else float("nan"), "acc_clean": float(correct[~occluded].mean()) if (~occluded).any() else float("nan"),
           "n_occluded": int(occluded.sum()), "n_clean": int((~occluded).sum())}
    for branch, parts in branch_preds.items():
        if parts and occluded.any():
            out[f"acc_occluded_{branch}_branch"] = float((np.concatenate(parts) == labels)[occluded].mean())
    if has_attention:
        w = np.concatenate(weights)
        scale = image_size / float(getattr(dataset, "face_size", image_size))
        flags = patch_occlusion(boxes, model.patch_boxes(image_size), scale=scale, min_fraction=min_fraction)
        out.update(attention=w, patch_occluded=flags,
                   attention_auroc_occluded_faces=auroc(1 - w[occluded], flags[occluded]),
                   attention_auroc_all_faces=auroc(1 - w, flags),
                   attention_auroc_within_position=within_position_auroc(w, flags),
                   mean_attention_occluded=float(w[flags].mean()) if flags.any() else float("nan"),
                   mean_attention_visible=float(w[~flags].mean()) if (~flags).any() else float("nan"))
    return out


def attention_figure(dataset, weights: np.ndarray, flags: np.ndarray, grid: int, path: Path, *, n: int = 12,
                     tile: int = 96) -> str:
    """Occluded test faces with each patch's weight written in its cell; occluded patches outlined red."""
    from PIL import Image, ImageDraw

    from ml.uncertainty import _font

    rows = [i for i in range(len(dataset)) if flags[i].any()][:n]
    cols = min(6, max(1, len(rows)))
    canvas = Image.new("RGB", (cols * (tile + 4) + 4, math.ceil(max(1, len(rows)) / cols) * (tile + 4) + 4 + 16),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(9, tile // 8))
    step = tile / grid
    for k, i in enumerate(rows):
        x0, y0 = 4 + (k % cols) * (tile + 4), 4 + (k // cols) * (tile + 4)
        canvas.paste(dataset.load_image(i).convert("RGB").resize((tile, tile), Image.BILINEAR), (x0, y0))
        for p in range(grid * grid):
            r, c = divmod(p, grid)
            box = (x0 + c * step, y0 + r * step, x0 + (c + 1) * step - 1, y0 + (r + 1) * step - 1)
            draw.rectangle(box, outline=(210, 30, 30) if flags[i, p] else (255, 255, 255), width=2 if flags[i, p] else 1)
            draw.text((box[0] + 3, box[1] + 2), f"{weights[i, p]:.2f}", fill=(255, 255, 0), font=font,
                      stroke_width=1, stroke_fill=(0, 0, 0))
    draw.text((4, canvas.height - 15), "patch attention weight; red: occluded patch (generator box)",
              fill=(20, 20, 20), font=_font(10))
    canvas.save(path)
    return str(path)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.occlusion", allow_abbrev=False,
                                description="UAPL vs ULDL vs CE on occluded synthetic faces; patch attention AUROC.",
                                epilog="Any other flag goes to ml.train (see python -m ml.train --help).")
    p.add_argument("--methods", nargs="+", default=["ce", "uldl", "uapl"], help="ml.train methods")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--seed-list", type=int, nargs="+", default=None, help="explicit seeds")
    p.add_argument("--occluded-fraction", type=float, default=0.3,
                   help="a patch is occluded when this fraction of its area is inside the occluder box")
    p.add_argument("--noise", type=float, default=0.0,
                   help="fraction of training labels flipped to another class (ml.train --noise, flips seeded by the "
                        "run's seed): occluders and label noise together, where ULDL's and UAPL's targets have "
                        "something to correct; test labels stay clean")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--report-only", action="store_true", help="only rewrite table.md from results.csv")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """This script's flags plus `train_argv`, the rest, for ml.train."""
    return parse_with_train_argv(get_args_parser(), argv)


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _append(path: Path, row: dict) -> None:
    """Append one row; a results.csv from an older version (fewer columns) is rewritten with today's header."""
    rows = _read(path)
    if rows and list(rows[0]) != RESULT_COLUMNS:
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, restval="", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _mean_se(values: list[float]) -> tuple[float, float, int]:
    arr = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if len(arr) == 0:
        return float("nan"), float("nan"), 0
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return float(arr.mean()), se, len(arr)


def write_table(out: Path, rows: list[dict]) -> str:
    from scipy.stats import t as student_t

    from ml.figures import bar_plot

    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["# Occlusion experiment", "",
             "Test accuracy (%) after the last epoch, mean ± standard error over seeds; occluded / clean = test "
             "faces with / without an occluder. Attention AUROC: 1 − patch weight flagging occluded patches.", "",
             "| method | all test faces | occluded faces | clean faces | attention AUROC (occluded faces) | "
             "attention AUROC (all faces) | attention AUROC (within position) | seeds |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(values, scale=100.0, digits=2):
        m, se, n = _mean_se(values)
        if n == 0:
            return ""
        return f"{m * scale:.{digits}f}" + ("" if math.isnan(se) else f" ± {se * scale:.{digits}f}")

    bars = {}
    for method in methods:
        rs = [r for r in rows if r["method"] == method]
        col = {k: [_num(r.get(k)) for r in rs] for k in RESULT_COLUMNS}
        lines.append(f"| {method} | {cell(col['test_acc'])} | {cell(col['acc_occluded'])} | "
                     f"{cell(col['acc_clean'])} | {cell(col['attention_auroc_occluded_faces'], 1, 3)} | "
                     f"{cell(col['attention_auroc_all_faces'], 1, 3)} | "
                     f"{cell(col['attention_auroc_within_position'], 1, 3)} | {len(rs)} |")
        m, se, n = _mean_se(col["acc_occluded"])
        if n:
            bars[method] = (100 * m, 100 * se if not math.isnan(se) else float("nan"))
    by = {(r["method"], int(float(r["seed"]))): _num(r["acc_occluded"]) for r in rows}
    # every UAPL variant (method names starting with "uapl", e.g. a merged "uapl_global") against both baselines,
    # and a variant against its "<variant>_uniform" ablation (every patch weighing 1): what the attention adds
    pairs = [(m, b) for m in methods if m.startswith("uapl") for b in ("uldl", "ce")] + [("uldl", "ce")]
    pairs += [(m.removesuffix("_uniform"), m) for m in methods if m.endswith("_uniform")
              and m.removesuffix("_uniform") in methods]
    # any other "<variant>_<change>" against its "<variant>" (e.g. uapl_wholeface_ldlwhole − uapl_wholeface):
    # what the change adds
    pairs += [(m, base) for m in methods if not m.endswith("_uniform")
              for base in methods if base.startswith("uapl_") and m.startswith(base + "_")]
    diff_lines = []
    for a, b in pairs:
        d = np.array([by[(a, s)] - by[(b, s)] for (m, s) in by if m == a and (b, s) in by])
        if len(d) == 0:
            continue
        mean = d.mean()
        if len(d) > 1:
            half = student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
            ci = f" [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]"
        else:
            ci = ""
        diff_lines.append(f"| {a} − {b} | {100 * mean:+.2f}{ci} | {int((d > 0).sum())}/{len(d)} |")
    if diff_lines:
        lines += ["", "**paired differences on occluded test faces (points), mean [95% CI]**", "",
                  "| pair | difference | seeds ahead |", "|---|---|---|", *diff_lines]
    branch_lines = []
    for method in methods:  # UAPL with a whole-face branch: accuracy of each branch alone on occluded faces
        rs = [r for r in rows if r["method"] == method and r.get("acc_occluded_whole_face_branch")]
        if rs:
            col = {k: [_num(r.get(k)) for r in rs] for k in RESULT_COLUMNS}
            branch_lines.append(f"| {method} | {cell(col['acc_occluded'])} | "
                                f"{cell(col['acc_occluded_whole_face_branch'])} | "
                                f"{cell(col['acc_occluded_patch_branch'])} | {len(rs)} |")
    if branch_lines:
        lines += ["", "**occluded test faces, each branch alone (UAPL with a whole-face branch)**", "",
                  "| method | both (the model's prediction) | whole-face branch alone | patch branch alone | seeds |",
                  "|---|---|---|---|---|", *branch_lines]
    if bar_plot(bars, out / "accuracy.png", ylabel="accuracy on occluded test faces (%)",
                title="Occluded test faces"):
        lines += ["", "![accuracy on occluded test faces](accuracy.png)"]
    if (out / "attention.png").is_file():
        lines += ["", "![UAPL patch attention on occluded test faces](attention.png)"]
    body = "\n".join(lines) + "\n"
    (out / "table.md").write_text(body)
    return body


def main(args: argparse.Namespace) -> list[dict]:
    import copy

    import torch

    from ml.checkpoints import plain
    from ml.train import METHODS, TrainingInputError, fit, setup
    from ml.train import get_args_parser as train_parser

    if args.report_only:
        rows = _read(Path(args.out) / "results.csv")
        if not rows:
            fail(f"no results.csv with rows in {args.out}")
        print(write_table(Path(args.out), rows))
        return rows
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        fail(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if not 0 < args.occluded_fraction <= 1:
        fail("--occluded-fraction must be in (0, 1]")
    if not 0 <= args.noise < 1:
        fail("--noise must be in [0, 1)")
    parser = train_parser()
    base = parser.parse_args(getattr(args, "train_argv", []))
    defaults = parser.parse_args([])
    clashes = [n for n in OWNED_TRAIN_OPTIONS if getattr(base, n) != getattr(defaults, n)]
    if clashes:
        fail(f"ml.occlusion sets {', '.join('--' + c for c in clashes)} itself")
    if base.dataset != "synthetic":
        fail("the occlusion experiment needs --dataset synthetic (occluder boxes come from the generator)")
    seeds = args.seed_list or list(range(args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    done = {(r["method"], int(float(r["seed"]))) for r in _read(results)}
    for seed in seeds:
        for method in args.methods:
            if (method, seed) in done:
                continue
            run_args = copy.deepcopy(base)
            run_args.method, run_args.seed, run_args.out = method, seed, str(out / "runs" / f"{method}_seed{seed}")
            run_args.noise = args.noise
            try:
                run = setup(run_args)
            except TrainingInputError as exc:
                fail(f"{method} seed {seed}: {exc}")
            metrics = fit(run)
            ev = evaluate_occlusion(run.model, run.data.test, run.device, image_size=run_args.image_size,
                                    min_fraction=args.occluded_fraction)
            if "attention" in ev and seed == seeds[0]:
                attention_figure(run.data.test, ev["attention"], ev["patch_occluded"], run.model.grid,
                                 out / "attention.png")
            row = {k: ev.get(k, "") for k in RESULT_COLUMNS}
            row.update(method=method, seed=seed, noise=args.noise, epochs=metrics.get("epoch"),
                       seconds=metrics.get("seconds"), run=str(Path(run_args.out).relative_to(out)))
            row = {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            _append(results, row)
            run_dir = Path(run_args.out)
            if "attention" in ev:
                write_attention_csv(run_dir / "attention.csv", run.data.test, ev["attention"], ev["patch_occluded"])
            (run_dir / "run.json").write_text(json.dumps(plain(vars(run_args)), indent=2) + "\n")
            for name in ("last.pt", "best.pt"):
                (run_dir / name).unlink(missing_ok=True)
            print(f"{method} seed {seed}: occluded {row['acc_occluded']} clean {row['acc_clean']} "
                  f"attention AUROC {row['attention_auroc_occluded_faces']}", flush=True)
            del run
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
    rows = _read(results)
    print(write_table(out, rows))
    return rows


if __name__ == "__main__":
    main(parse_args())
