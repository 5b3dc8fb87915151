"""Occluder boxes from the generator, patch occlusion labels, attention AUROC, the occlusion evaluation."""
import numpy as np
import pytest
import torch

from ml.data.synthetic import OCCLUSIONS, generate_face
from ml.occlusion import auroc, evaluate_occlusion, patch_occlusion


def test_occluder_box_covers_exactly_the_changed_pixels():
    plain = np.asarray(generate_face(11, size=48).image, dtype=int)
    for occlusion in OCCLUSIONS:
        face = generate_face(11, size=48, occlusion=occlusion)
        x0, y0, x1, y1 = face.occluder_box
        assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
        changed = np.abs(np.asarray(face.image, dtype=int) - plain).sum(-1) > 0
        ys, xs = np.nonzero(changed)
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
        assert changed[y0:y1, x0:x1].mean() > 0.3  # the box is tight, not the whole image
    assert generate_face(11, size=48).occluder_box is None


def test_random_occluders_follow_the_rate_and_leave_other_faces_untouched():
    faces = [generate_face(i, size=24, occlusion_rate=0.5) for i in range(60)]
    occluded = [f for f in faces if f.occlusion]
    assert 15 < len(occluded) < 45
    assert {f.occlusion for f in occluded} <= set(OCCLUSIONS)
    for i, face in enumerate(faces):
        if face.occlusion is None:
            assert face.occluder_box is None
            assert np.array_equal(np.asarray(face.image), np.asarray(generate_face(i, size=24).image))
    with pytest.raises(ValueError, match="occlusion_rate"):
        generate_face(0, occlusion_rate=1.5)


def test_synthetic_dataset_exposes_occluder_boxes():
    from ml.data import build_dataset

    ds = build_dataset("synthetic", None, "train", train=False, image_size=24, n=20, seed=3, occlusion_rate=0.5)
    assert ds.occluder_boxes.shape == (20, 4)
    has = ds.occluder_boxes[:, 0] >= 0
    assert 0 < has.sum() < 20
    assert (ds.occluder_boxes[~has] == -1).all()


def test_patch_occlusion_uses_area_fraction_and_scale():
    patches = [(0, 0, 10, 10), (10, 0, 20, 10)]
    boxes = np.array([[0, 0, 10, 3], [0, 0, 10, 2], [-1, -1, -1, -1], [0, 0, 6, 6]])
    flags = patch_occlusion(boxes, patches, min_fraction=0.3)
    assert flags.tolist() == [[True, False], [False, False], [False, False], [True, False]]
    # boxes drawn at half the input size: scale 2 doubles them
    assert patch_occlusion(np.array([[5, 0, 10, 2]]), patches, scale=2.0).tolist() == [[False, True]]


def test_auroc_matches_pairwise_definition():
    scores = np.array([0.9, 0.8, 0.3, 0.3, 0.1])
    positives = np.array([True, False, True, False, False])
    # pairs (pos, neg): 0.9 > all 3 negatives; 0.3 vs 0.8 lose, vs 0.3 tie, vs 0.1 win -> (3 + 1.5) / 6
    assert auroc(scores, positives) == pytest.approx(4.5 / 6)
    assert np.isnan(auroc(scores, np.zeros(5, bool)))


class _Faces(torch.utils.data.Dataset):
    def __init__(self):
        self.labels = np.array([0, 1, 0, 1])
        self.occluder_boxes = np.array([[0, 0, 8, 8], [-1, -1, -1, -1], [8, 8, 16, 16], [-1, -1, -1, -1]])
        self.face_size = 16

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"image": torch.full((3, 16, 16), float(i)), "label": int(self.labels[i])}


def test_evaluate_occlusion_splits_accuracy_and_scores_attention():
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 2, grid=2)
    out = evaluate_occlusion(model, _Faces(), torch.device("cpu"), image_size=16)
    assert out["n_occluded"] == 2 and out["n_clean"] == 2
    assert out["attention"].shape == (4, 2 * 2)
    assert out["patch_occluded"][:, 0].tolist() == [True, False, False, False]
    assert out["patch_occluded"][:, 3].tolist() == [False, False, True, False]
    assert 0.0 <= out["attention_auroc_all_faces"] <= 1.0
    assert "attention_auroc_within_position" in out
    assert "acc_occluded_whole_face_branch" not in out  # no whole-face branch, no per-branch accuracy
    plain = evaluate_occlusion(build_model("resnet18_small", 2), _Faces(), torch.device("cpu"), image_size=16)
    assert "attention" not in plain and 0.0 <= plain["acc_occluded"] <= 1.0


def test_evaluate_occlusion_scores_each_branch_of_a_two_branch_uapl_alone():
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 2, grid=2, patches="stem", whole_face_branch=True).eval()
    faces = _Faces()
    with torch.no_grad():  # make the patch branch decide: its logits dwarf the whole face's
        model.classifier.weight.mul_(1e3)
    out = evaluate_occlusion(model, faces, torch.device("cpu"), image_size=16)
    assert out["acc_occluded_patch_branch"] == out["acc_occluded"]
    with torch.no_grad():  # and now the whole-face branch
        model.classifier.weight.mul_(1e-9)
        model.classifier.bias.zero_()
    out = evaluate_occlusion(model, faces, torch.device("cpu"), image_size=16)
    assert out["acc_occluded_whole_face_branch"] == out["acc_occluded"]
    assert {"acc_occluded_whole_face_branch", "acc_occluded_patch_branch"} <= set(out)


def test_uniform_attention_ablation_weighs_every_patch_one():
    from ml.models import build_model

    model = build_model("uapl_resnet18_small", 3, grid=3, patches="stem", uniform_attention=True).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out = model.forward_patches(x)
    assert torch.equal(out["attention"], torch.ones(2, 9))
    assert torch.allclose(out["features"], out["patches"].mean(1), atol=1e-6)
    scored = evaluate_occlusion(model, _Faces(), torch.device("cpu"), image_size=16)
    assert "attention_auroc_occluded_faces" not in scored  # constant weights: nothing to score


def test_within_position_auroc_compares_each_region_only_with_itself():
    from ml.occlusion import within_position_auroc

    # position 0 is always low (an uninformative forehead), position 1 drops only when covered
    weights = np.array([[0.1, 0.9], [0.1, 0.8], [0.1, 0.2], [0.1, 0.3]])
    flags = np.array([[False, False], [False, False], [False, True], [False, True]])
    assert within_position_auroc(weights, flags, min_count=1) == pytest.approx(1.0)
    # pooled over positions the forehead looks as suspect as the covered mouths
    assert auroc(1 - weights, flags) < 0.8
    assert np.isnan(within_position_auroc(weights, flags, min_count=3))


def test_results_csv_of_an_older_version_gets_todays_header(tmp_path):
    import csv

    from ml.occlusion import RESULT_COLUMNS, _append, _read, write_attention_csv

    path = tmp_path / "results.csv"
    path.write_text("method,seed,test_acc,acc_occluded\nce,0,0.5,0.4\n")
    _append(path, {"method": "uapl", "seed": 0, "test_acc": 0.6, "acc_occluded": 0.5,
                   "attention_auroc_within_position": 0.9})
    rows = _read(path)
    assert list(rows[0]) == RESULT_COLUMNS
    assert [(r["method"], r["acc_occluded"], r["attention_auroc_within_position"]) for r in rows] == [
        ("ce", "0.4", ""), ("uapl", "0.5", "0.9")]
    write_attention_csv(tmp_path / "attention.csv", _Faces(), np.full((4, 2), 0.25), np.zeros((4, 2), bool))
    with (tmp_path / "attention.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and rows[0] == {"index": "0", "label": "0", "face_occluded": "1", "patch": "0",
                                          "weight": "0.25000", "occluded": "0"}


def test_table_pairs_every_uapl_variant_with_both_baselines_and_report_only_rewrites_it(tmp_path):
    from ml.occlusion import RESULT_COLUMNS, _append, main, parse_args

    accuracy = {"ce": (0.40, 0.42), "uldl": (0.38, 0.41), "uapl": (0.30, 0.31), "uapl_global": (0.45, 0.44),
                "uapl_global_uniform": (0.40, 0.42), "uapl_global_ldlwhole": (0.47, 0.47)}
    for method, values in accuracy.items():
        for seed, acc in enumerate(values):
            _append(tmp_path / "results.csv", {k: "" for k in RESULT_COLUMNS} | {
                "method": method, "seed": seed, "test_acc": acc, "acc_occluded": acc, "acc_clean": acc,
                "attention_auroc_occluded_faces": 0.8 if method.startswith("uapl") else ""})
    main(parse_args(["--out", str(tmp_path), "--report-only"]))
    table = (tmp_path / "table.md").read_text()
    assert "| uapl_global − uldl | +5.00 [" in table and "| uapl − ce | -10.50 [" in table
    assert "| uldl − ce |" in table and "| uapl_global − ce | +3.50 [" in table
    assert "| uapl | 30.50 ± 0.50 |" in table
    assert "| uapl_global − uapl_global_uniform | +3.50 [" in table  # what the attention adds
    assert "| uapl_global_ldlwhole − uapl_global | +2.50 [" in table  # what a change to the variant adds
    assert "uapl_global_uniform − uapl_global |" not in table and "− uapl |" not in table
    assert "each branch alone" not in table  # no run with a whole-face branch


def test_noise_flips_the_training_labels_of_every_run_and_is_recorded(tmp_path):
    import json

    from ml.occlusion import main, parse_args
    from tests.files import read_rows

    tiny = ["--dataset", "synthetic", "--synthetic-occlusion-rate", "0.5", "--synthetic-n", "20",
            "--synthetic-test-n", "8", "--arch", "resnet18_small", "--image-size", "16", "--epochs", "1",
            "--batch-size", "10", "--workers", "0", "--lr-steps", "1", "--no-progress"]
    main(parse_args(["--out", str(tmp_path), "--methods", "ce", "--seed-list", "3", "--noise", "0.3", *tiny]))
    (row,) = read_rows(tmp_path / "results.csv")
    assert (row["method"], row["seed"], row["noise"]) == ("ce", "3", "0.3")
    run = json.loads((tmp_path / "runs" / "ce_seed3" / "run.json").read_text())
    assert run["noise"] == 0.3 and run["seed"] == 3
    with pytest.raises(SystemExit):
        main(parse_args(["--out", str(tmp_path), "--noise", "1.5", *tiny]))
