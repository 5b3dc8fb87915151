"""The shared-labels summary: a 7-class model on an 8-label study, against values worked out by hand."""
import math

import numpy as np
import pytest

from ml.labels import AFFECTNET7, AFFECTNET8
from study.analysis import metrics
from study.analysis.label_coverage import restrict_counts, restrict_to_shared, shared_label_summary, shared_mask
from study.analysis.label_mapping import missing_study_labels

# AFFECTNET8: Neutral, Happiness, Sadness, Surprise, Fear, Disgust, Anger, Contempt; the model lacks Contempt.
N, H, S, A, C = (AFFECTNET8.index(name) for name in ("Neutral", "Happiness", "Sadness", "Anger", "Contempt"))


def row(**shares) -> list[float]:
    out = [0.0] * len(AFFECTNET8)
    for index, value in shares.items():
        out[{"N": N, "H": H, "S": S, "A": A, "C": C}[index]] = value
    return out


# Four voted images (human vote shares) and the 7-class model's predictions (Contempt always 0):
HUMAN = np.array([
    row(H=0.5, C=0.5),          # 2 Happiness, 2 Contempt -> shared: Happiness 1
    row(C=1.0),                 # every vote Contempt -> no shared distribution: left out
    row(S=0.5, A=0.5),          # no Contempt vote -> unchanged
    row(N=0.25, H=0.25, C=0.5),  # 1 Neutral, 1 Happiness, 2 Contempt -> shared: Neutral 0.5, Happiness 0.5
])
MODEL = np.array([
    row(H=1.0),
    row(N=1.0),
    row(S=0.5, A=0.5),
    row(N=0.8, H=0.2),
])
SHARED = shared_mask(AFFECTNET8, ["Contempt"])


def test_a_seven_class_model_lacks_contempt_on_an_eight_label_study():
    assert missing_study_labels(model_classes=AFFECTNET7, study_labels=AFFECTNET8) == ("Contempt",)
    assert missing_study_labels(model_classes=["happy", "neutral", "SAD"], study_labels=["Happiness", "Sadness",
                                                                                         "Fear"]) == ("Fear",)
    assert missing_study_labels(model_classes=[], study_labels=AFFECTNET8) == ()  # nothing known to be missing
    assert SHARED.tolist() == [True] * 7 + [False]


def test_restriction_renormalises_both_sides_and_leaves_out_images_voted_only_for_missing_labels():
    restricted = restrict_to_shared(HUMAN, MODEL, SHARED)
    assert restricted.left_out == 1 and restricted.kept.tolist() == [True, False, True, True]
    assert restricted.h.shape == restricted.p.shape == (3, 7)
    np.testing.assert_allclose(restricted.h[0], row(H=1.0)[:7])
    np.testing.assert_allclose(restricted.h[2], row(N=0.5, H=0.5)[:7])
    np.testing.assert_allclose(restricted.p[2], row(N=0.8, H=0.2)[:7])
    np.testing.assert_allclose(restricted.h.sum(1), 1.0)


def test_prediction_mass_on_a_missing_label_is_renormalised_away_and_none_at_all_becomes_uniform():
    restricted = restrict_to_shared([row(H=1.0), row(S=1.0)], [row(H=0.25, C=0.75), row(C=1.0)], SHARED)
    np.testing.assert_allclose(restricted.p[0], row(H=1.0)[:7])
    np.testing.assert_allclose(restricted.p[1], [1 / 7] * 7)


def test_shared_label_summary_matches_hand_worked_values():
    summary, left_out = shared_label_summary(HUMAN, MODEL, SHARED)
    assert left_out == 1 and summary.n_images == 3
    # Image 1: h' = p' = Happiness 1 -> JS 0, intersection 1, match. Image 3: identical -> JS 0, intersection 1,
    # match (the model's tie resolves to Sadness, a tied majority label). Image 4: h' = (N .5, H .5),
    # p' = (N .8, H .2): intersection .5 + .2 = .7, match (Neutral is a tied majority label).
    assert summary.top1_agreement == 1.0
    assert summary.mean_intersection == pytest.approx((1 + 1 + 0.7) / 3)
    # JS of image 4, base 2: m = (.65, .35); .5 KL(h||m) + .5 KL(p||m).
    js4 = 0.5 * (0.5 * math.log2(0.5 / 0.65) + 0.5 * math.log2(0.5 / 0.35)) \
        + 0.5 * (0.8 * math.log2(0.8 / 0.65) + 0.2 * math.log2(0.2 / 0.35))
    assert summary.mean_js == pytest.approx(js4 / 3)
    assert np.asarray(summary.confusion).shape == (7, 7)  # over the shared labels only
    assert np.asarray(summary.confusion).sum() == 3


def test_all_labels_summary_of_the_same_images_counts_the_missing_label_against_the_model():
    summary = metrics.summary(HUMAN, MODEL)
    assert summary.n_images == 4
    # Image 1: majority tie Happiness/Contempt, the model picks Happiness -> match; intersection .5.
    # Image 2: all Contempt, the model says Neutral -> no match, intersection 0, JS 1.
    # Image 3: identical -> match, intersection 1. Image 4: majority Contempt, model Neutral -> no match;
    # intersection .25 + .2 = .45.
    assert summary.top1_agreement == 0.5
    assert summary.mean_intersection == pytest.approx((0.5 + 0 + 1 + 0.45) / 4)
    # JS of image 1: m = (H .75, C .25): .5 [.5 log2(.5/.75) + .5 log2(.5/.25)] + .5 [log2(1/.75)].
    js1 = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2)) + 0.5 * math.log2(1 / 0.75)
    per_image = metrics.js_divergence(HUMAN, MODEL)
    assert per_image[0] == pytest.approx(js1) and per_image[1] == pytest.approx(1.0) and per_image[2] == 0
    assert np.asarray(summary.confusion).shape == (8, 8)


def test_when_every_image_is_voted_only_for_missing_labels_nothing_is_scored():
    summary, left_out = shared_label_summary([row(C=1.0)] * 2, [row(H=1.0)] * 2, SHARED)
    assert left_out == 2 and summary.n_images == 0 and math.isnan(summary.top1_agreement)


def test_restricted_counts_keep_only_images_with_a_vote_on_a_shared_label():
    counts = np.array([row(H=2, C=2), row(C=3), row(S=1, A=1)])
    kept = restrict_counts(counts, SHARED)
    assert kept.shape == (2, 7) and kept.sum() == 4
