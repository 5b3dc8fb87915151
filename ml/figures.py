"""PNG figures of the experiments: training curves, the label-noise plot (Table 1) and the occlusion plot.

matplotlib (the `ml` extra in pyproject.toml) draws them with the non-interactive Agg backend; where it
is not installed every writer prints a note and returns None instead of failing a training run.
The Figure 4 image grid is drawn with Pillow in ml.uncertainty.
"""
from __future__ import annotations

import math
from pathlib import Path

__all__ = ["training_curves", "noise_plot", "bar_plot", "have_matplotlib"]


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    if not have_matplotlib():
        print("note: matplotlib is not installed (pip install 'emostudy[ml]'); no PNG written")
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def training_curves(history: list[dict], path: str | Path, *, title: str = "") -> str | None:
    """Loss, train/test accuracy and mean lambda per epoch (one panel each) -> PNG at `path`."""
    plt = _pyplot()
    if plt is None or not history:
        return None
    epochs = [int(row["epoch"]) for row in history]
    lam = [_number(row.get("mean_lambda")) for row in history]
    panels = 3 if any(not math.isnan(v) for v in lam) else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.0 * panels, 3.2), dpi=90)
    axes[0].plot(epochs, [_number(r["train_loss"]) for r in history], marker="o", ms=3)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    for key, label in (("train_acc", "train (given labels)"), ("train_acc_original", "train (clean labels)"),
                       ("test_acc", "test")):
        values = [_number(r.get(key)) for r in history]
        if any(not math.isnan(v) for v in values):
            axes[1].plot(epochs, [100 * v for v in values], marker="o", ms=3, label=label)
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    axes[1].legend(fontsize=7)
    if panels == 3:
        axes[2].plot(epochs, lam, marker="o", ms=3, color="tab:purple")
        axes[2].set(xlabel="epoch", ylabel="mean λ of the batches", title="uncertainty factor λ")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def noise_plot(stats: dict[tuple[str, float], tuple[float, float, int]], path: str | Path, *,
               title: str = "Test accuracy under label noise") -> str | None:
    """Accuracy (%) vs noise rate, one line per method with +-1 standard-error bars -> PNG.

    stats: {(method, rate): (mean, standard error, n)} as ml.noise.summarise returns (fractions).
    """
    plt = _pyplot()
    if plt is None or not stats:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=90)
    methods = list(dict.fromkeys(m for m, _ in stats))
    for k, method in enumerate(methods):
        rates = sorted(r for m, r in stats if m == method)
        means = [100 * stats[(method, r)][0] for r in rates]
        errors = [0.0 if math.isnan(stats[(method, r)][1]) else 100 * stats[(method, r)][1] for r in rates]
        dodge = 0.4 * (k - (len(methods) - 1) / 2)  # side by side, so error bars at one rate do not overlap
        ax.errorbar([100 * r + dodge for r in rates], means, yerr=errors, marker="o", capsize=3, label=method)
    ax.set(xlabel="training labels flipped (%)", ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def bar_plot(values: dict[str, tuple[float, float]], path: str | Path, *, ylabel: str, title: str = "",
             reference: float | None = None) -> str | None:
    """One bar per name with a +-1 standard-error whisker ({name: (mean, se)}) -> PNG."""
    plt = _pyplot()
    if plt is None or not values:
        return None
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(values), 3.6), dpi=90)
    names = list(values)
    means = [values[n][0] for n in names]
    errors = [0.0 if math.isnan(values[n][1]) else values[n][1] for n in names]
    ax.bar(names, means, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", lw=1)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    if max(len(n) for n in names) > 10:  # long names side by side would overlap: slant them
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return _save(fig, plt, path)
