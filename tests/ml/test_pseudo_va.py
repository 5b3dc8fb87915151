"""Pseudo-VA: a VA CSV replaces the synthetic generator's true VA entirely, in ml.data and in ml.train."""
import csv

import numpy as np
import pytest

from ml.data import build_dataset
from ml.va import va_metrics


def _write_va(path, paths, va):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subDirectory_filePath", "expression", "valence", "arousal"])
        for p, (v, a) in zip(paths, va, strict=False):
            writer.writerow([p, 0, f"{v:.5f}", f"{a:.5f}"])


def test_va_csv_replaces_generator_va_and_missing_rows_are_nan_not_truth(tmp_path):
    truth = build_dataset("synthetic", None, "train", train=False, image_size=16, n=12, seed=5)
    fake = np.column_stack([np.linspace(-0.9, 0.9, 12), np.linspace(0.9, -0.9, 12)])
    _write_va(tmp_path / "va.csv", truth.paths[:10], fake[:10])  # the last two faces have no pseudo-VA
    ds = build_dataset("synthetic", None, "train", train=False, image_size=16, n=12, seed=5,
                       va_csv=tmp_path / "va.csv")
    assert np.allclose(ds.va[:10], fake[:10], atol=1e-4)
    assert np.isnan(ds.va[10:]).all()  # never the generator's value
    assert not np.allclose(ds.va[:10], truth.va[:10], atol=1e-2)


def test_train_builds_neighbours_from_the_csv_not_the_generator(tmp_path, monkeypatch):
    import ml.train as train_module

    truth = build_dataset("synthetic", None, "train", train=False, image_size=16, n=16, seed=0)
    fake = np.column_stack([np.arange(16) / 16.0, np.zeros(16)])  # neighbours = adjacent indices
    _write_va(tmp_path / "va.csv", truth.paths, fake)
    seen = {}
    original = train_module.knn_in_va

    def spy(va, k):
        seen["va"] = np.asarray(va).copy()
        return original(va, k)

    monkeypatch.setattr(train_module, "knn_in_va", spy)
    args = train_module.default_args(method="uldl", arch="resnet18_small", epochs=1, batch_size=8, image_size=16,
                                     workers=0, limit_batches=1, out=str(tmp_path / "run"), lr_steps=[1],
                                     progress=False, curves=False, synthetic_n=16, synthetic_test_n=8,
                                     va_csv=str(tmp_path / "va.csv"), k=2, threads=1)
    train_module.train(args)
    assert np.allclose(seen["va"], fake, atol=1e-4)
    # a CSV that misses a training face is an error, not a silent fallback to the true VA
    _write_va(tmp_path / "short.csv", truth.paths[:15], fake[:15])
    args.va_csv, args.out = str(tmp_path / "short.csv"), str(tmp_path / "run2")
    with pytest.raises(train_module.TrainingInputError, match="valence/arousal"):
        train_module.train(args)


def test_va_metrics_report_mae_and_pearson():
    true = np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]])
    pred = true * 2 + 0.1
    m = va_metrics(pred, true)
    assert m["pearson_valence"] == pytest.approx(1.0) and m["pearson_arousal"] == pytest.approx(1.0)
    assert m["mae_valence"] == pytest.approx(np.mean(np.abs(pred[:, 0] - true[:, 0])))


def test_neighbour_agreement_counts_shared_labels_and_majorities():
    from ml.neighbour_check import neighbour_agreement

    va = np.array([[0.0, 0], [0.01, 0], [0.02, 0], [1.0, 1], [1.01, 1], [1.02, 1]])
    clean = np.array([0, 0, 0, 1, 1, 1])
    out = neighbour_agreement(va, clean, k=2, noise=0.0 + 1e-9, seeds=1, num_classes=2)
    assert out["share"] == 1.0 and out["majority"] == 1.0
    mixed = neighbour_agreement(va, np.array([0, 1, 0, 1, 0, 1]), k=2, noise=1e-9, seeds=1, num_classes=2)
    assert mixed["share"] < 0.6
