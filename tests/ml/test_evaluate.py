"""ml.evaluate: scoring with classes matched by name (Table 2 protocol), the CLI on tiny checkpoints."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ml.checkpoints import save_checkpoint
from ml.evaluate import EvaluationError, align_classes, format_confusion, get_args_parser, main, score_predictions
from ml.labels import AFFECTNET8, RAFDB_BASIC7
from ml.models import build_model
from ml.predictor import Predictor
from tests.ml.fixtures import make_rafdb


def test_score_masks_model_only_classes_and_excludes_dataset_only_classes():
    model = ["A", "B", "C", "X"]
    data = ["A", "B", "C", "Y"]
    probs = np.array([
        [0.5, 0.1, 0.1, 0.3],   # A -> A
        [0.1, 0.2, 0.1, 0.6],   # B -> X is masked, next best B
        [0.4, 0.1, 0.3, 0.2],   # C -> A (wrong)
        [0.1, 0.1, 0.7, 0.1],   # C -> C
        [0.9, 0.0, 0.0, 0.1],   # Y: the model has no Y, excluded
    ])
    r = score_predictions(probs, np.array([0, 1, 2, 2, 3]), model, data)
    assert r["classes"] == ["A", "B", "C"]
    assert r["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert r["accuracy"] == pytest.approx(3 / 4) and r["n"] == 4
    assert r["mean_class_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert r["masked_model_classes"] == ["X"] and r["excluded_dataset_classes"] == ["Y"]
    assert r["excluded_images"] == 1 and r["excluded_by_class"] == {"Y": 1}
    assert r["predicted"] == [0, 1, 0, 2, -1]


def test_classes_match_by_canonical_name_whatever_the_order():
    align = align_classes(["happy", "Sad", "Angry"], ["Anger", "Happiness", "Sadness"])
    assert align.model_columns == [2, 0, 1] and align.dataset_indices == [0, 1, 2]
    assert align.masked == [] and align.excluded == []


def test_mean_class_accuracy_skips_classes_without_images():
    r = score_predictions(np.eye(3)[[0, 0, 1]], np.array([0, 0, 1]), ["A", "B", "C"], ["A", "B", "C"])
    assert r["mean_class_accuracy"] == 1.0 and np.isnan(r["per_class"]["C"]["accuracy"])
    assert "C" in format_confusion(r) and "-" in format_confusion(r).splitlines()[-1]


def test_no_shared_class_is_an_evaluation_error():
    with pytest.raises(EvaluationError, match="share no class"):
        score_predictions(np.ones((1, 2)) / 2, np.array([0]), ["A", "B"], ["C", "D"])


def constant_checkpoint(path, classes, favourites):
    """A checkpoint whose logits ignore the image: classifier weights 0, bias ranks `favourites` first."""
    torch.manual_seed(0)
    model = build_model("resnet18_small", len(classes)).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        for rank, name in enumerate(favourites):
            model.classifier.bias[classes.index(name)] = 10.0 - rank
    return save_checkpoint(path, {"task": "expression", "model": model.state_dict(), "arch": "resnet18_small",
                                  "classes": list(classes), "input_size": 32,
                                  "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}, "epoch": 1,
                                  "metrics": {}, "args": {}})


def run_cli(argv):
    return main(get_args_parser().parse_args([*argv, "--workers", "0", "--no-progress"]))


def test_cross_dataset_masks_contempt_of_an_affectnet_model_on_rafdb(tmp_path, capsys):
    written = make_rafdb(tmp_path / "raf", n_train=2, n_test=14)
    ckpt = constant_checkpoint(tmp_path / "aff.pt", AFFECTNET8, ["Contempt", "Neutral"])
    results = run_cli(["--checkpoint", str(ckpt), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
                       "--out", str(tmp_path / "out.json")])
    truth = written.labels["test"]
    assert results["masked_model_classes"] == ["Contempt"] and results["excluded_images"] == 0
    assert results["classes"] == RAFDB_BASIC7 and results["n"] == 14
    assert results["accuracy"] == pytest.approx(truth.count("Neutral") / 14)  # Contempt masked -> Neutral
    neutral = RAFDB_BASIC7.index("Neutral")
    assert [row[neutral] for row in results["confusion"]] == [truth.count(c) for c in RAFDB_BASIC7]
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["confusion"] == results["confusion"] and saved["accuracy"] == results["accuracy"]
    out = capsys.readouterr().out
    assert "masked out of the argmax: Contempt" in out and "true \\ pred" in out


def test_dataset_classes_the_model_lacks_are_excluded_and_reported(tmp_path, capsys):
    written = make_rafdb(tmp_path / "raf", n_train=2, n_test=14)
    ckpt = constant_checkpoint(tmp_path / "m.pt", ["Happiness", "Sadness", "Neutral"], ["Sadness"])
    results = run_cli(["--checkpoint", str(ckpt), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
                       "--out", str(tmp_path / "out.csv")])
    truth = written.labels["test"]
    kept = [t for t in truth if t in ("Happiness", "Sadness", "Neutral")]
    assert results["classes"] == ["Happiness", "Sadness", "Neutral"]  # dataset order, shared only
    assert results["n"] == len(kept) and results["excluded_images"] == 14 - len(kept)
    assert results["accuracy"] == pytest.approx(kept.count("Sadness") / len(kept))
    assert set(results["excluded_dataset_classes"]) == {"Surprise", "Fear", "Disgust", "Anger"}
    rows = list(csv.reader((tmp_path / "out.csv").open()))
    assert rows[0] == ["true\\pred", "Happiness", "Sadness", "Neutral", "n", "accuracy"]
    assert float(rows[-2][1]) == pytest.approx(results["accuracy"])
    assert "images excluded" in capsys.readouterr().out


def test_per_image_predictions_equal_the_predictors_own(tmp_path):
    make_rafdb(tmp_path / "raf", n_train=2, n_test=6)
    torch.manual_seed(1)
    model = build_model("resnet18_small", 7).eval()
    ckpt = save_checkpoint(tmp_path / "r.pt", {"task": "expression", "model": model.state_dict(),
                                              "arch": "resnet18_small", "classes": RAFDB_BASIC7, "input_size": 32,
                                              "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3},
                                              "epoch": 1, "metrics": {}, "args": {}})
    run_cli(["--checkpoint", str(ckpt), "--dataset", "rafdb", "--data-root", str(tmp_path / "raf"),
             "--per-image", str(tmp_path / "pred.csv"), "--batch-size", "4"])
    rows = list(csv.DictReader((tmp_path / "pred.csv").open()))
    from ml.data import build_dataset

    dataset = build_dataset("rafdb", tmp_path / "raf", "test", train=False, image_size=32)
    direct = Predictor.from_checkpoint(ckpt, device="cpu").predict([dataset.load_image(i) for i in range(6)])
    got = np.array([[float(r[f"p_{c}"]) for c in RAFDB_BASIC7] for r in rows])
    np.testing.assert_allclose(got, direct, atol=1e-4)
    assert [r["path"] for r in rows] == dataset.paths


def test_accuracy_matches_the_training_runs_own_test_accuracy(tmp_path):
    from ml.train import default_args, train

    metrics = train(default_args(dataset="synthetic", synthetic_n=24, synthetic_test_n=12, method="ce",
                                 arch="resnet18_small", image_size=24, epochs=1, batch_size=8, workers=0,
                                 lr_steps=[1], progress=False, out=str(tmp_path / "run")))
    results = run_cli(["--checkpoint", str(tmp_path / "run" / "last.pt"), "--dataset", "synthetic",
                       "--synthetic-n", "12"])
    assert results["n"] == 12 and results["accuracy"] == pytest.approx(metrics["test_acc"])


@pytest.mark.parametrize("extra, message", [
    (["--checkpoint", "{tmp}/missing.pt"], "no such checkpoint file"),
    (["--checkpoint", "{ckpt}", "--dataset", "rafdb", "--data-root", "{tmp}/nowhere"], "data root not found"),
    (["--checkpoint", "{ckpt}", "--dataset", "rafdb"], "needs a root folder"),
    (["--checkpoint", "{ckpt}", "--out", "{tmp}/r.txt"], "must end in .json or .csv"),
    (["--checkpoint", "{ckpt}", "--device", "tpu9"], "invalid device"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, extra, message):
    ckpt = constant_checkpoint(tmp_path / "c.pt", RAFDB_BASIC7, ["Neutral"])
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in extra]
    with pytest.raises(SystemExit) as info:
        run_cli(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_prints_no_traceback_for_a_text_file_checkpoint(tmp_path):
    (tmp_path / "fake.pt").write_text("not a checkpoint")
    result = subprocess.run([sys.executable, "-m", "ml.evaluate", "--checkpoint", str(tmp_path / "fake.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_every_flag_is_documented():
    undocumented = [a.dest for a in get_args_parser()._actions if a.dest != "help" and not a.help]
    assert undocumented == []
