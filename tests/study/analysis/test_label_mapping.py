import math

import pytest

from study.analysis.label_mapping import LabelMismatch, label_mapping_build, normalised_entropy

RAF = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
AFFECTNET = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]


def test_reorders_model_columns_into_study_order_by_name():
    mapping = label_mapping_build(model_classes=list(reversed(RAF)), study_labels=RAF)
    probs = [0.0, 0.0, 0.0, 0.7, 0.1, 0.1, 0.1]  # model order: Neutral..Surprise
    distribution, dropped = mapping.apply(probs)
    assert distribution == pytest.approx([0.1, 0.1, 0.1, 0.7, 0.0, 0.0, 0.0])
    assert dropped == 0.0


def test_extra_model_classes_are_dropped_renormalised_and_recorded():
    mapping = label_mapping_build(model_classes=AFFECTNET, study_labels=RAF)
    probs = [0.1, 0.3, 0.0, 0.1, 0.0, 0.0, 0.1, 0.4]  # 0.4 on Contempt
    distribution, dropped = mapping.apply(probs)
    assert dropped == pytest.approx(0.4)
    assert sum(distribution) == pytest.approx(1.0)
    assert distribution[RAF.index("Happiness")] == pytest.approx(0.5)


def test_missing_study_label_is_refused_naming_it():
    with pytest.raises(LabelMismatch, match="Contempt"):
        label_mapping_build(model_classes=RAF, study_labels=AFFECTNET)


def test_all_mass_on_dropped_classes_falls_back_to_uniform():
    mapping = label_mapping_build(model_classes=[*RAF, "Contempt"], study_labels=RAF)
    distribution, dropped = mapping.apply([0.0] * 7 + [1.0])
    assert distribution == pytest.approx([1 / 7] * 7) and dropped == 1.0


def test_normalised_entropy_bounds():
    assert normalised_entropy([1.0, 0.0, 0.0]) == 0.0
    assert normalised_entropy([0.25] * 4) == pytest.approx(1.0)
    assert normalised_entropy([0.5, 0.5, 0.0, 0.0]) == pytest.approx(math.log(2) / math.log(4))
