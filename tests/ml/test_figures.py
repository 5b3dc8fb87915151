"""Figure writers produce valid PNGs: training curves, the noise plot, bars, the Figure 4 class grid."""

import pytest
from PIL import Image

from ml.figures import bar_plot, have_matplotlib, noise_plot, training_curves
from ml.noise import paired_differences, paired_table
from ml.uncertainty import draw_class_grid, select_per_class

needs_matplotlib = pytest.mark.skipif(not have_matplotlib(), reason="matplotlib (the ml extra) not installed")


def _is_png(path, min_size=(100, 100)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        image.load()


@needs_matplotlib
def test_training_curves_png_with_and_without_lambda(tmp_path):
    history = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.1 * e, "test_acc": 0.09 * e,
                "train_acc_original": 0.1 * e, "mean_lambda": 0.6 + 0.01 * e} for e in range(1, 5)]
    _is_png(training_curves(history, tmp_path / "a.png", title="uldl"))
    for row in history:
        row["mean_lambda"] = float("nan")
    _is_png(training_curves(history, tmp_path / "b.png"))
    assert training_curves([], tmp_path / "c.png") is None


@needs_matplotlib
def test_noise_and_bar_plots_are_pngs(tmp_path):
    stats = {("ce", 0.1): (0.8, 0.01, 5), ("ce", 0.3): (0.6, 0.02, 5), ("uldl", 0.1): (0.82, float("nan"), 1)}
    _is_png(noise_plot(stats, tmp_path / "noise.png"))
    _is_png(bar_plot({"ce": (50.0, 1.0), "uapl": (55.0, float("nan"))}, tmp_path / "bar.png", ylabel="%"))


def test_paired_differences_pair_by_seed_and_give_a_t_interval():
    rows = [{"method": m, "rate": "0.3", "seed": str(s), "test_acc": str(v)}
            for m, s, v in [("ce", 0, 0.50), ("ce", 1, 0.60), ("ce", 2, 0.55),
                            ("uldl", 0, 0.55), ("uldl", 1, 0.62), ("uldl", 2, 0.61), ("uldl", 3, 0.99)]]
    d = paired_differences(rows)[("uldl", 0.3)]
    assert d["n"] == 3 and d["wins"] == 3  # seed 3 has no CE partner
    assert d["mean"] == pytest.approx((0.05 + 0.02 + 0.06) / 3)
    # t(0.975, 2) = 4.303; sd of (0.05, 0.02, 0.06) = 0.02082
    assert d["high"] - d["mean"] == pytest.approx(4.3027 * 0.020817 / 3 ** 0.5, rel=1e-3)
    assert "+4.33" in paired_table(rows)


def test_figure4_class_grid_orders_by_lambda_per_class(tmp_path):
    rows = [{"index": i, "lambda": lam, "path": "", "given_label": label, "original_label": label,
             "flipped": i == 3} for i, (label, lam) in enumerate(
                [("Happiness", 0.9), ("Happiness", 0.2), ("Sadness", 0.5), ("Happiness", 0.6), ("Sadness", 0.1)])]
    columns = select_per_class(rows, 2)
    assert list(columns) == ["Happiness", "Sadness"]
    assert [r["lambda"] for r in columns["Happiness"]] == [0.2, 0.9]  # min and max of the class, ascending
    assert [r["lambda"] for r in columns["Sadness"]] == [0.1, 0.5]
    image = draw_class_grid(columns, {id(r): Image.new("RGB", (8, 8), "gray") for r in rows}, tile=48)
    image.save(tmp_path / "fig4.png")
    _is_png(tmp_path / "fig4.png")
