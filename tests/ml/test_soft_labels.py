"""Training and evaluating on human distributions (soft_labels.csv): reading, class mapping, targets, CLI errors."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import jensenshannon

from ml import evaluate as ml_evaluate
from ml import train as ml_train
from ml.checkpoints import load_checkpoint
from ml.data.base import DatasetError
from ml.data.soft_labels import load_soft_labels
from ml.soft_targets import HumanTargetObjective, plain_soft_target

# The study's spelling, with aliases and a label the models below lack (Contempt).
HEADER = ["image", "file", "n_votes", "p_happy", "p_Sadness", "p_angry", "p_Contempt"]


def write_study_export(root, n=12, seed=0):
    """Tiny PNGs (colour = the majority class) and a soft_labels.csv as study.exports writes it."""
    rng = np.random.default_rng(seed)
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        votes = rng.multinomial(10, [0.6, 0.2, 0.15, 0.05] if i % 2 else [0.1, 0.2, 0.6, 0.1])
        pixels = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
        pixels[:, :, int(np.argmax(votes[:3]))] += 150
        name = f"stimuli/face_{i:02d}.png"
        Image.fromarray(pixels).save(root / name)
        rows.append([name, f"face_{i:02d}.png", 10, *(votes / 10)])
    rows.append(["stimuli/unvoted.png", "unvoted.png", 0, "", "", "", ""])  # no votes: skipped
    path = root / "soft_labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def run_train(*argv):
    return ml_train.main(ml_train.get_args_parser().parse_args(
        [*argv, "--arch", "resnet18_small", "--image-size", "16", "--batch-size", "4", "--workers", "0",
         "--no-curves", "--no-progress", "--device", "cpu"]))


def test_distributions_are_mapped_by_name_and_renormalised(tmp_path):
    path = write_study_export(tmp_path)
    data = load_soft_labels(path, classes=["Anger", "Happiness", "Sadness"], root=tmp_path, transform=None)
    assert len(data) == 12 and data.classes == ["Anger", "Happiness", "Sadness"]
    rows = list(csv.DictReader(path.open()))
    first = np.array([float(rows[0][c]) for c in ("p_angry", "p_happy", "p_Sadness")])
    np.testing.assert_allclose(data.targets[0], first / first.sum(), rtol=1e-6)  # Contempt's share dropped
    np.testing.assert_allclose(data.targets.sum(1), 1, rtol=1e-6)
    assert (data.labels == data.targets.argmax(1)).all()
    own = load_soft_labels(path, classes=None, root=tmp_path, transform=None)
    assert own.classes == ["Happiness", "Sadness", "Anger", "Contempt"]


def test_targets_ce_uses_the_human_distribution_and_uldl_mixes_it_with_the_argmax():
    human = torch.tensor([[0.6, 0.3, 0.1]])
    assert torch.equal(plain_soft_target(human, "ce", 0.1), human)
    torch.testing.assert_close(plain_soft_target(human, "ls", 0.3), 0.7 * human + 0.1)
    objective = HumanTargetObjective(n=1, feature_dim=4, num_classes=3, lambda_init=0.0)  # lam = 0.5
    out = objective(features=torch.randn(1, 4), logits=torch.zeros(1, 3), labels=torch.tensor([0]),
                    index=torch.tensor([0]), human=human)
    torch.testing.assert_close(out["target"], torch.tensor([[0.8, 0.15, 0.05]]))
    out["loss"].backward()
    assert objective.factors.logit.grad is not None  # lam learns from the loss, as in ULDL


def test_uldl_then_ce_fine_tuning_from_init(tmp_path):
    path = write_study_export(tmp_path)
    first = run_train("--soft-labels", str(path), "--method", "uldl", "--epochs", "1", "--out", str(tmp_path / "u"))
    assert first["train_images"] == 12
    lambdas = list(csv.DictReader((tmp_path / "u" / "lambdas.csv").open()))
    assert len(lambdas) == 12 and lambdas[0]["path"] == "stimuli/face_00.png"
    start = load_checkpoint(tmp_path / "u" / "last.pt")
    assert start["classes"] == ["Happiness", "Sadness", "Anger", "Contempt"]
    assert "init_checkpoint" not in start["args"]
    # A vanishing learning rate keeps the weights where --init put them: the start checkpoint's, not fresh ones.
    run_train("--soft-labels", str(path), "--method", "ce", "--epochs", "1", "--init", str(tmp_path / "u" / "last.pt"),
              "--lr", "1e-9", "--out", str(tmp_path / "c"))
    tuned = load_checkpoint(tmp_path / "c" / "last.pt")
    assert tuned["classes"] == start["classes"] and tuned["epoch"] == 1 and tuned["method"] == "ce"
    weights = [k for k in start["model"] if "running" not in k and "num_batches" not in k]
    assert weights and all(torch.allclose(tuned["model"][k], start["model"][k], atol=1e-6) for k in weights)


def bad_csv(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "soft-label file not found"),
    ("no_image_column", "needs an `image` column"),
    ("not_a_number", "is not a number"),
    ("no_images", "none of the"),
    ("broken_image", "cannot read image"),
    ("no_shared_class", "share no class name"),
    ("bad_init", "cannot start from --init"),
    ("init_and_resume", "exclude each other"),
])
def test_bad_input_is_a_clear_error_with_status_2(tmp_path, capsys, case, message):
    good = write_study_export(tmp_path)
    extra = []
    if case == "missing":
        path = tmp_path / "nope.csv"
    elif case == "no_image_column":
        path = bad_csv(tmp_path, "file,p_happy\na.png,1\n")
    elif case == "not_a_number":
        path = bad_csv(tmp_path, "image,n_votes,p_happy\nstimuli/face_00.png,3,lots\n")
    elif case == "no_images":
        path = bad_csv(tmp_path, "image,n_votes,p_happy\ngone.png,3,1\n")
    elif case == "broken_image":
        (tmp_path / "stimuli" / "face_00.png").write_text("not a png")
        path = good
    elif case == "no_shared_class":
        path = good
        extra = ["--init", str(tmp_path / "va.pt")]
        from tests.checkpoints import write_tiny_checkpoint

        write_tiny_checkpoint(tmp_path / "va.pt", classes=["Fear", "Neutral"], input_size=16)
    else:
        path = good
        extra = ["--init", str(good)] if case == "bad_init" else ["--init", str(good), "--resume", str(good)]
    with pytest.raises(SystemExit) as exit_info:
        run_train("--soft-labels", str(path), "--epochs", "1", "--method", "ce", "--out", str(tmp_path / "o"), *extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_distribution_scores_match_scipy_and_ignore_classes_either_side_lacks():
    human = np.array([[0.6, 0.4, 0.0], [0.0, 0.5, 0.5]])  # Happiness, Sadness, Anger
    probs = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]])  # Sadness, Happiness, Anger, Contempt
    scores = ml_evaluate.distribution_scores(probs, human, ["sad", "happy", "angry", "Contempt"],
                                             ["Happiness", "Sadness", "Anger"])
    p = probs[:, [1, 0, 2]] / probs[:, [1, 0, 2]].sum(1, keepdims=True)
    expected_js = np.mean([jensenshannon(h, q, base=2) ** 2 for h, q in zip(human, p, strict=True)])
    assert scores["mean_js"] == pytest.approx(expected_js) and scores["n_distributions"] == 2
    same = ml_evaluate.distribution_scores(human, human, ["Happiness", "Sadness", "Anger"],
                                           ["Happiness", "Sadness", "Anger"])
    assert same["mean_js"] == pytest.approx(0, abs=1e-12) and same["mean_kl"] == pytest.approx(0, abs=1e-5)


def test_evaluate_reports_js_and_kl_and_refuses_a_bad_file(tmp_path, capsys):
    path = write_study_export(tmp_path)
    run_train("--soft-labels", str(path), "--method", "ce", "--epochs", "1", "--out", str(tmp_path / "c"))
    argv = ["--checkpoint", str(tmp_path / "c" / "last.pt"), "--soft-labels", str(path), "--workers", "0",
            "--device", "cpu", "--out", str(tmp_path / "r.json")]
    results = ml_evaluate.main(ml_evaluate.get_args_parser().parse_args(argv))
    assert 0 <= results["mean_js"] <= 1 and results["mean_kl"] >= 0 and results["n_distributions"] == 12
    assert "mean JS" in capsys.readouterr().out and '"mean_js"' in (tmp_path / "r.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        ml_evaluate.main(ml_evaluate.get_args_parser().parse_args(
            [*argv[:2], "--soft-labels", str(bad_csv(tmp_path, "image\n")), "--workers", "0"]))
    assert exit_info.value.code == 2 and "error: " in capsys.readouterr().err
    with pytest.raises(DatasetError):
        load_soft_labels(tmp_path / "c" / "last.pt", classes=None, root=tmp_path, transform=None)
