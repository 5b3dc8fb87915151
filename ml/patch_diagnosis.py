"""Why does (or doesn't) UAPL's patch attention flag occluders? Per-patch signals of a trained UAPL model.

    python -m ml.patch_diagnosis --method uapl --dataset synthetic --synthetic-occlusion-rate 0.5 ... \\
        --epochs 12 --out runs/diag

Trains one UAPL run with the given ml.train flags (or, with --checkpoint, loads one), then on the test
faces prints, for occluded patches, visible patches of occluded faces and patches of clean faces: each
patch head's support for the label (its probability of the true class), that support relative to the
image's best patch and to the same position's mean, the patch heads' accuracy, the attention weight, and
the AUROC of each as a flag of occluded patches. A mechanism that pulls attention towards a signal can
only flag occluders if the signal itself separates occluded from visible patches; this shows which does.
The generator's occluder boxes are used here for scoring only.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml.cli import parse_with_train_argv
from ml.occlusion import auroc, patch_occlusion, within_position_auroc

__all__ = ["patch_signals", "summarise", "main"]


def patch_signals(model, dataset, *, image_size: int, min_fraction: float = 0.3, batch_size: int = 64) -> dict:
    """Per test image and patch: support for the true label, patch-head hit, attention, occluded flag."""
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    probs, weights, logits = [], [], []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            out = model.forward_patches(batch["image"])
            probs.append(out["patch_logits"].float().softmax(-1).numpy())
            weights.append(out["attention"].float().numpy())
            logits.append(out["logits"].float().numpy())
    p, w = np.concatenate(probs), np.concatenate(weights)
    y = np.asarray(dataset.labels)
    boxes = np.asarray(dataset.occluder_boxes)
    scale = image_size / float(getattr(dataset, "face_size", image_size))
    flags = patch_occlusion(boxes, model.patch_boxes(image_size), scale=scale, min_fraction=min_fraction)
    support = p[np.arange(len(y)), :, y]  # (N, P): each patch's probability of the true class
    return {"support": support, "hit": p.argmax(-1) == y[:, None], "attention": w, "occluded": flags,
            "face_occluded": boxes[:, 0] >= 0, "image_hit": np.concatenate(logits).argmax(1) == y}


def summarise(s: dict) -> dict:
    """Means over occluded / visible / clean-face patches and AUROCs of each signal (low = occluded)."""
    flags, face = s["occluded"], s["face_occluded"]
    signals = {"support": s["support"],
               "support_relative_to_image": s["support"] / s["support"].max(1, keepdims=True),
               "support_relative_to_position": np.minimum(1, s["support"] / s["support"].mean(0, keepdims=True)),
               "patch_accuracy": s["hit"].astype(np.float64), "attention": s["attention"]}
    out = {"image_accuracy": float(s["image_hit"].mean()),
           "image_accuracy_occluded": float(s["image_hit"][face].mean()),
           "image_accuracy_clean": float(s["image_hit"][~face].mean()),
           "patch_accuracy_per_position": s["hit"].mean(0).round(3).tolist(),
           "occluded_rate_per_position": flags.mean(0).round(3).tolist(),
           "attention_per_position": s["attention"].mean(0).round(3).tolist()}
    for name, v in signals.items():
        out[name] = {"occluded_patches": float(v[flags].mean()),
                     "visible_patches_of_occluded_faces": float(v[face][~flags[face]].mean()),
                     "patches_of_clean_faces": float(v[~face].mean()),
                     "auroc_occluded_faces": auroc(1 - v[face], flags[face]),
                     "auroc_all_faces": auroc(1 - v, flags),
                     "auroc_within_position": within_position_auroc(v, flags)}
    return out


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.patch_diagnosis", allow_abbrev=False,
                                description="Per-patch signals of a UAPL model on occluded synthetic faces.",
                                epilog="Any other flag goes to ml.train (see python -m ml.train --help).")
    p.add_argument("--checkpoint", default=None, help="a UAPL last.pt/best.pt to analyse instead of training")
    p.add_argument("--occluded-fraction", type=float, default=0.3, help="as ml.occlusion")
    p.add_argument("--report", default=None, help="write the summary as JSON here")
    return p


def main(args: argparse.Namespace) -> dict:
    from ml.checkpoints import build_model_from_checkpoint, load_checkpoint
    from ml.cli import fail
    from ml.train import TrainingInputError, fit, setup
    from ml.train import get_args_parser as train_parser

    train_args = train_parser().parse_args(getattr(args, "train_argv", []))
    if train_args.method != "uapl" or train_args.dataset != "synthetic":
        fail("the diagnosis needs --method uapl --dataset synthetic (occluder boxes come from the generator)")
    try:
        run = setup(train_args)
    except TrainingInputError as exc:
        fail(str(exc))
    if args.checkpoint:
        run.model = build_model_from_checkpoint(load_checkpoint(args.checkpoint))
    else:
        fit(run)
    summary = summarise(patch_signals(run.model, run.data.test, image_size=train_args.image_size,
                                      min_fraction=args.occluded_fraction))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return summary


if __name__ == "__main__":
    main(parse_with_train_argv(get_args_parser()))
