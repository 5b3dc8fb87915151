"""ml.patch_diagnosis: per-patch signals of a UAPL model against the generator's occluder boxes."""
import numpy as np
import pytest
import torch

from ml.patch_diagnosis import patch_signals, summarise
from tests.ml.test_occlusion import _Faces


def test_patch_signals_and_summary_on_a_tiny_model():
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 2, grid=2, patches="stem")
    s = patch_signals(model, _Faces(), image_size=16)
    assert s["support"].shape == (4, 4) and ((s["support"] > 0) & (s["support"] < 1)).all()
    assert s["occluded"][:, 0].tolist() == [True, False, False, False]
    summary = summarise(s)
    assert summary["support_relative_to_image"]["patches_of_clean_faces"] <= 1.0
    assert 0.0 <= summary["attention"]["auroc_occluded_faces"] <= 1.0


def test_summary_signals_separate_a_hidden_region_only_when_compared_within_its_position():
    # patch 0 never helps (support 0.1); patch 1 helps (0.8) unless it is occluded (0.1)
    support = np.tile(np.array([[0.1, 0.8], [0.1, 0.8], [0.1, 0.1], [0.1, 0.1]]), (5, 1))
    occluded = np.tile(np.array([[False, False], [False, False], [False, True], [False, True]]), (5, 1))
    s = {"support": support, "hit": support > 0.5, "attention": 1 - occluded * 0.5, "occluded": occluded,
         "face_occluded": occluded.any(1), "image_hit": np.tile([True, True, False, False], 5)}
    out = summarise(s)
    assert out["support"]["auroc_occluded_faces"] == pytest.approx(0.5)  # tie with the useless patch 0
    assert out["support_relative_to_position"]["auroc_within_position"] == pytest.approx(1.0)
    assert out["attention"]["auroc_all_faces"] == pytest.approx(1.0)
    assert out["image_accuracy_occluded"] == 0.0 and out["image_accuracy_clean"] == 1.0
