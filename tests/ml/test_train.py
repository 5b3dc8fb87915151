"""Training CLI: 1-2 step runs of every method on a handful of tiny images, outputs, determinism, errors."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ml.data
from ml.predictor import Predictor
from ml.train import default_args, get_args_parser, main, train

CLASSES = ["Happiness", "Sadness", "Anger"]


class TinyFER(torch.utils.data.Dataset):
    """The FERDataset contract in miniature: colour encodes the class, VA sits near a class prototype."""

    def __init__(self, n, seed, with_va=True):
        rng = np.random.default_rng(seed)
        self.classes = list(CLASSES)
        self.labels = rng.integers(0, 3, n).astype(np.int64)
        protos = np.array([[0.8, 0.5], [-0.6, -0.4], [-0.5, 0.7]])
        self.va = (protos[self.labels] + rng.normal(0, 0.1, (n, 2))).astype(np.float32) if with_va else None
        self.pixels = rng.integers(0, 60, (n, 16, 16, 3)).astype(np.uint8)
        self.pixels[np.arange(n), :, :, self.labels] += 150
        self.paths = [f"img_{i:03d}.png" for i in range(n)]

    def __len__(self):
        return len(self.labels)

    def load_image(self, i):
        return Image.fromarray(self.pixels[i])

    def __getitem__(self, i):
        x = torch.from_numpy(self.pixels[i]).permute(2, 0, 1).float() / 127.5 - 1
        va = torch.full((2,), float("nan")) if self.va is None else torch.from_numpy(self.va[i])
        return {"image": x, "label": int(self.labels[i]), "va": va, "index": i}


@pytest.fixture
def tiny_data(monkeypatch):
    """ml.data.build_dataset replaced by TinyFER: 16 training and 8 test images of 16x16 px."""
    calls = []

    def build_dataset(name, root, split, *, train, image_size, **kwargs):
        calls.append((name, split, train, kwargs))
        return TinyFER(16 if split == "train" else 8, seed=0 if split == "train" else 1,
                       with_va=name != "folder")

    monkeypatch.setattr(ml.data, "build_dataset", build_dataset, raising=False)
    return calls


def tiny_args(tmp_path, **overrides):
    options = dict(arch="resnet18_small", epochs=1, batch_size=8, image_size=16, workers=0, limit_batches=2,
                   out=str(tmp_path / "run"), lr_steps=[1], progress=False)
    options.update(overrides)
    return default_args(**options)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("method, neighbours", [("uldl", "bank"), ("uldl", "exact"), ("uapl", "bank"),
                                                ("ce", "bank"), ("ls", "bank")])
def test_each_method_trains_and_writes_checkpoints_and_csvs(tmp_path, tiny_data, method, neighbours):
    metrics = main(tiny_args(tmp_path, method=method, neighbours=neighbours))
    out = tmp_path / "run"
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["classes"] == CLASSES and ckpt["epoch"] == 1 and ckpt["input_size"] == 16
    assert ckpt["arch"] == ("uapl_resnet18_small" if method == "uapl" else "resnet18_small")
    assert ckpt["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert ckpt["metrics"]["test_acc"] == metrics["test_acc"]
    assert Predictor.from_checkpoint(out / "best.pt", device="cpu").predict([Image.new("RGB", (9, 9))]).shape == (1, 3)
    rows = read_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1"]
    assert {"train_loss", "train_acc", "test_acc", "mean_lambda", "lr", "epoch_seconds"} <= set(rows[0])
    if method in ("uldl", "uapl"):
        lam = read_csv(out / "lambdas.csv")
        assert len(lam) == 16 and lam[3]["path"] == "img_003.png" and lam[0]["flipped"] == "0"
        assert 0 < float(lam[0]["lambda"]) < 1 and float(rows[0]["mean_lambda"]) == pytest.approx(0.6225, abs=1e-3)
        assert "objective" in ckpt  # lam is saved for --resume
    else:
        assert not (out / "lambdas.csv").exists() and rows[0]["mean_lambda"] == ""


def test_lambda_moves_during_training(tmp_path, tiny_data):
    train(tiny_args(tmp_path, epochs=2, limit_batches=None))
    lam = [float(r["lambda"]) for r in read_csv(tmp_path / "run" / "lambdas.csv")]
    assert len(set(lam)) > 1 and all(abs(v - 0.6225) > 1e-4 for v in lam)


def test_same_seed_gives_identical_runs(tmp_path, tiny_data):
    first = train(tiny_args(tmp_path, out=str(tmp_path / "a"), seed=3))
    second = train(tiny_args(tmp_path, out=str(tmp_path / "b"), seed=3))
    assert first["train_loss"] == second["train_loss"] and first["test_acc"] == second["test_acc"]
    assert (tmp_path / "a" / "lambdas.csv").read_text() == (tmp_path / "b" / "lambdas.csv").read_text()
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_from_last_epoch_with_lambda(tmp_path, tiny_data):
    train(tiny_args(tmp_path, epochs=1))
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["objective"]["factors.logit"]
    metrics = train(tiny_args(tmp_path, epochs=2, resume=str(tmp_path / "run")))
    assert metrics["epoch"] == 2
    assert [r["epoch"] for r in read_csv(tmp_path / "run" / "metrics.csv")] == ["1", "2"]
    assert not torch.equal(saved, torch.full_like(saved, 0.5))  # resumed lam was the trained one


def test_missing_data_root_exits_2_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_args(tmp_path, dataset="rafdb", data_root=str(tmp_path / "nowhere")))
    assert exit_info.value.code == 2
    assert "data root not found" in capsys.readouterr().err


def test_uldl_without_valence_arousal_exits_2(tmp_path, tiny_data, capsys):
    (tmp_path / "faces").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_args(tmp_path, dataset="folder", data_root=str(tmp_path / "faces")))
    assert exit_info.value.code == 2
    assert "valence/arousal" in capsys.readouterr().err


def test_cli_reports_bad_input_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ml.train", "--dataset", "affectnet", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "error: --data-root is required" in result.stderr and "Traceback" not in result.stderr


def test_every_flag_is_documented():
    parser = get_args_parser()
    undocumented = [a.dest for a in parser._actions if a.dest != "help" and not a.help]
    assert undocumented == []


def test_on_epoch_hears_each_epoch_for_progress_reports(tmp_path, tiny_data):
    rows = []
    train(tiny_args(tmp_path, method="ce", epochs=2, lr_steps=[2]), on_epoch=rows.append)
    assert [(row["epoch"], row["epochs"]) for row in rows] == [(1, 2), (2, 2)]
    assert all(0 <= row["test_acc"] <= 1 for row in rows)
