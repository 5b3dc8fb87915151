"""How much ULDL's VA neighbours know about a synthetic face's clean label: true VA vs a pseudo-VA CSV.

    python -m ml.neighbour_check --va-csv pseudo_va.csv --synthetic-n 600 --image-size 40 --ambiguity 0.3

For the K nearest neighbours in VA space (ml.ldl.knn_in_va, as training uses) prints the share of
neighbours whose clean label equals the face's, and how often the majority of their noisy labels
(--noise, seeds 0..--seeds-1, ml.data.label_noise) recovers the clean label. With the generator's true
VA the neighbours are a near-clean side channel that cross entropy never sees (issue 14); the pseudo-VA
row shows what ULDL gets in the paper's setting.
"""
from __future__ import annotations

import argparse

import numpy as np

__all__ = ["neighbour_agreement", "main"]


def neighbour_agreement(va: np.ndarray, clean: np.ndarray, *, k: int = 8, noise: float = 0.3, seeds: int = 5,
                        num_classes: int = 7) -> dict:
    """{'share': mean share of neighbours with the clean label, 'majority': P(noisy majority == clean)}."""
    from ml.data.label_noise import apply_label_noise
    from ml.ldl import knn_in_va

    idx = knn_in_va(va, k)[0].numpy()
    clean = np.asarray(clean)
    share = float((clean[idx] == clean[:, None]).mean())
    hits = []
    for seed in range(seeds):
        noisy = np.asarray(apply_label_noise(clean, noise, num_classes, seed)[0])
        majority = np.array([np.bincount(noisy[row], minlength=num_classes).argmax() for row in idx])
        hits.append(float((majority == clean).mean()))
    return {"share": share, "majority": float(np.mean(hits))}


def main(argv: list[str] | None = None) -> dict:
    from ml.data import build_dataset

    p = argparse.ArgumentParser(prog="python -m ml.neighbour_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--va-csv", required=True, help="pseudo-VA CSV of the synthetic training faces (ml.va predict)")
    p.add_argument("--synthetic-n", type=int, default=2000, help="synthetic training faces")
    p.add_argument("--synthetic-seed", type=int, default=0, help="their seed")
    p.add_argument("--ambiguity", type=float, default=0.3, help="their ambiguity")
    p.add_argument("--occlusion-rate", type=float, default=0.0, help="their occluder rate")
    p.add_argument("--image-size", type=int, default=40, help="drawing size (does not change VA or labels)")
    p.add_argument("--k", type=int, default=8, help="neighbours")
    p.add_argument("--noise", type=float, default=0.3, help="label-noise rate for the majority check")
    p.add_argument("--seeds", type=int, default=5, help="label-noise seeds 0..N-1")
    args = p.parse_args(argv)
    opts = dict(train=False, image_size=args.image_size, n=args.synthetic_n, seed=args.synthetic_seed,
                ambiguity=args.ambiguity, occlusion_rate=args.occlusion_rate)
    truth = build_dataset("synthetic", None, "train", **opts)
    pseudo = build_dataset("synthetic", None, "train", va_csv=args.va_csv, **opts)
    out = {}
    for name, va in (("true VA", truth.va), ("pseudo-VA", pseudo.va)):
        out[name] = neighbour_agreement(va, truth.labels, k=args.k, noise=args.noise, seeds=args.seeds,
                                        num_classes=len(truth.classes))
        print(f"{name}: {out[name]['share']:.3f} of the {args.k} neighbours share the clean label; their noisy "
              f"majority ({args.noise:.0%} noise, {args.seeds} seeds) is the clean label for "
              f"{out[name]['majority']:.3f} of the faces")
    largest = np.bincount(truth.labels).max() / len(truth.labels)
    print(f"largest class share (chance level): {largest:.3f}")
    return out


if __name__ == "__main__":
    main()
