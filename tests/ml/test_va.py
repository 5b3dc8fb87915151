"""ml.va: train a VA regressor, write pseudo-VA in the official CSV layout, and train ULDL on it."""

import numpy as np
import pytest

from ml.labels import AFFECTNET8
from ml.va import concordance, get_args_parser, main, va_metrics
from tests.files import read_rows
from tests.ml.fixtures import make_rafdb

TINY = ["--synthetic-n", "24", "--synthetic-test-n", "8", "--image-size", "16", "--epochs", "1", "--workers", "0",
        "--batch-size", "8", "--no-progress"]


def cli(argv):
    return main(get_args_parser().parse_args(argv))


@pytest.fixture(scope="module")
def va_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("va")
    metrics = cli(["train", "--out", str(out), *TINY])
    return out / "va.pt", metrics


def test_concordance_is_one_for_identical_and_penalises_bias():
    x = np.array([0.1, -0.4, 0.5, 0.9])
    assert concordance(x, x) == pytest.approx(1.0)
    assert concordance(x + 0.5, x) < 0.8  # perfectly correlated but shifted
    m = va_metrics(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [np.nan, 0.0]]))
    assert m["n"] == 1 and m["rmse_valence"] == 0.0 and m["rmse_arousal"] == 1.0


def test_train_writes_a_va_checkpoint_that_vapredictor_loads(va_checkpoint):
    from PIL import Image

    from ml.predictor import VAPredictor

    path, metrics = va_checkpoint
    predictor = VAPredictor.from_checkpoint(path, device="cpu")
    va = predictor.predict_va([Image.new("RGB", (30, 30), (200, 150, 120))])
    assert va.shape == (1, 2) and np.all(np.abs(va) < 1)
    assert predictor.arch == "va_resnet18_small" and predictor.input_size == 16
    assert {"rmse_valence", "ccc_arousal", "train_mse"} <= set(metrics)
    assert read_rows(path.parent / "metrics.csv")[0]["epoch"] == "1"


def test_predict_writes_official_layout_that_loaders_attach_by_name(va_checkpoint, tmp_path):
    from ml.data import build_dataset

    written = make_rafdb(tmp_path / "raf", n_train=12, n_test=3)
    out = tmp_path / "raf" / "pseudo_va.csv"
    report = cli(["predict", "--checkpoint", str(va_checkpoint[0]), "--dataset", "rafdb", "--data-root",
                  str(tmp_path / "raf"), "--out", str(out), "--workers", "0", "--no-progress"])
    rows = read_rows(out)
    assert report["rows"] == 15 and len(rows) == 15
    assert list(rows[0])[:4] == ["subDirectory_filePath", "expression", "valence", "arousal"]
    assert [r["subDirectory_filePath"] for r in rows] == written.paths["train"] + written.paths["test"]
    assert [AFFECTNET8[int(r["expression"])] for r in rows] == written.labels["train"] + written.labels["test"]
    train = build_dataset("rafdb", tmp_path / "raf", "train", train=False, image_size=16)  # picked up by name
    np.testing.assert_allclose(train.va, [[float(r["valence"]), float(r["arousal"])] for r in rows[:12]], atol=1e-5)


def test_knn_column_lists_nearest_rows_in_va_without_self(va_checkpoint, tmp_path):
    make_rafdb(tmp_path / "raf", n_train=12, n_test=2)
    out = tmp_path / "train_knn.csv"
    cli(["predict", "--checkpoint", str(va_checkpoint[0]), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
         "--splits", "train", "--knn", "4", "--out", str(out), "--workers", "0", "--no-progress"])
    rows = read_rows(out)
    va = np.array([[float(r["valence"]), float(r["arousal"])] for r in rows])
    for i, row in enumerate(rows):
        knn = [int(j) for j in row["knn"].split(";")]
        assert len(knn) == 4 and i not in knn
        dist = np.abs(va - va[i]).sum(1)
        dist[i] = np.inf
        assert dist[knn].max() <= np.sort(dist)[3] + 1e-6


def test_uldl_trains_on_rafdb_with_pseudo_va(va_checkpoint, tmp_path):
    from ml.train import default_args, train

    make_rafdb(tmp_path / "raf", n_train=20, n_test=4)
    cli(["predict", "--checkpoint", str(va_checkpoint[0]), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
         "--out", str(tmp_path / "raf" / "pseudo_va.csv"), "--workers", "0", "--no-progress"])
    metrics = train(default_args(dataset="rafdb", data_root=str(tmp_path / "raf"), method="uldl", arch="resnet18_small",
                                 image_size=16, epochs=1, batch_size=10, workers=0, lr_steps=[1], progress=False,
                                 out=str(tmp_path / "run")))
    assert metrics["train_images"] == 20 and 0 <= metrics["test_acc"] <= 1


def test_train_takes_pseudo_va_from_an_explicit_va_csv(va_checkpoint, tmp_path):
    from ml.train import default_args, train

    make_rafdb(tmp_path / "raf", n_train=20, n_test=4)
    cli(["predict", "--checkpoint", str(va_checkpoint[0]), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
         "--out", str(tmp_path / "elsewhere.csv"), "--workers", "0", "--no-progress"])
    common = dict(dataset="rafdb", data_root=str(tmp_path / "raf"), method="uldl", arch="resnet18_small", image_size=16,
                  epochs=1, batch_size=10, workers=0, lr_steps=[1], progress=False)
    with pytest.raises(ValueError, match="valence"):  # no VA anywhere: ULDL refuses
        train(default_args(**common, out=str(tmp_path / "run0")))
    metrics = train(default_args(**common, va_csv=str(tmp_path / "elsewhere.csv"), out=str(tmp_path / "run")))
    assert metrics["train_images"] == 20


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "rafdb", "--data-root", "{raf}"], "has no valence/arousal"),
    (["predict", "--checkpoint", "{va}", "--data-root", "{raf}", "--knn", "3"], "exactly one split"),
    (["predict", "--checkpoint", "{tmp}/none.pt", "--data-root", "{raf}"], "no such checkpoint"),
    (["predict", "--checkpoint", "{va}", "--dataset", "folder", "--data-root", "{tmp}/x"], "data root not found"),
    (["train", "--device", "tpu0"], "invalid device"),
])
def test_bad_input_exits_2_with_a_message(va_checkpoint, tmp_path, capsys, argv, message):
    make_rafdb(tmp_path / "raf", n_train=3, n_test=2)
    argv = [a.format(raf=tmp_path / "raf", va=va_checkpoint[0], tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as info:
        cli([*argv, "--workers", "0", "--out", str(tmp_path / "o.csv")])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_every_flag_is_documented():
    parser = get_args_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for sub in subparsers.values():
        assert [a.dest for a in sub._actions if a.dest != "help" and not a.help] == []


def test_the_first_runs_va_model_is_a_slim_synthetic_face_checkpoint(tmp_path, monkeypatch):
    """build_demo (study.services.first_run's VA step) with TINY sizes: progress per epoch, a loadable VA model
    that names its training data."""
    from ml import va
    from ml.predictor import load_predictor

    monkeypatch.setattr(va, "DEMO_TRAIN_ARGV", ["train", "--dataset", "synthetic", "--arch", "resnet18_small",
                                                "--lr", "3e-3", "--threads", "1", *TINY])
    seen = []
    path = va.build_demo(tmp_path / "va_synthetic.pt", lambda done, total, message: seen.append((done, total, message)))
    assert [s[:2] for s in seen] == [(0, 1), (1, 1)] and "CCC valence" in seen[-1][2]
    model = load_predictor(path, device="cpu")
    assert model.task == "va" and model.training_data == "EmoStudy synthetic faces"
    assert model.training_domain == "synthetic"
    assert (tmp_path / "va_synthetic_run" / "metrics.csv").is_file()
