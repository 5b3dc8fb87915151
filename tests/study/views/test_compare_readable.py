"""The comparison view read without a manual: a plain headline per model, a warning with the number of votes that
is enough, metric names linked to one-sentence definitions, top labels beside ambiguity, and never `nan`."""
import re
from html import unescape

import numpy as np
import pytest

from study.analysis import compare_text
from study.models import Participant, Prediction, Vote
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


def test_headline_says_model_and_crowd_agreement_in_percent():
    text = compare_text.model_headline("demo", {"n_images": 40, "top1_agreement": 0.654},
                                       {"n_images": 40, "top1_agreement": 0.83})
    assert text == ("demo picks the crowd's top emotion on 65% of 40 images; two halves of the crowd agree with "
                    "each other on 83%.")


def test_headline_without_enough_votes_says_so_and_has_no_nan():
    text = compare_text.model_headline("demo", {"n_images": 0, "top1_agreement": float("nan")}, None)
    assert "not enough votes" in text and "nan" not in text
    partial = compare_text.model_headline("demo", {"n_images": 3, "top1_agreement": 1.0},
                                          {"n_images": 0, "top1_agreement": float("nan")})
    assert "100% of 3 images" in partial and "at least 2 votes" in partial


def test_few_votes_warning_says_how_many_is_enough():
    assert compare_text.few_votes_warning([10, 12, 30]) == ""
    warning = compare_text.few_votes_warning([1, 2, 2, 10, 0])
    assert "3 of 5 images have fewer than 10 votes (median 2" in warning
    assert "1 image has no votes yet" in warning and "About 10 votes per image is enough" in warning
    assert "No image has votes yet" in compare_text.few_votes_warning([0, 0])
    assert compare_text.few_votes_warning([]) == ""


def test_every_summary_column_has_a_one_sentence_definition():
    for key, (name, sentence) in compare_text.METRIC_DEFINITIONS.items():
        assert name and sentence.endswith(".") and sentence.count(". ") == 0, key


def test_page_with_one_vote_per_image_shows_no_nan_and_warns(client):
    study = StudyFactory()
    labels = study.label_set.labels
    stimuli = StimulusFactory.create_batch(4, study=study)
    person = Participant.objects.create(study=study, token="one")
    Vote.objects.bulk_create([Vote(participant=person, stimulus=s, label=labels[0], response_ms=500) for s in stimuli])
    model = ModelVersionFactory(classes=labels)
    Prediction.objects.bulk_create([Prediction(stimulus=s, model_version=model, ambiguity=0.5,
                                               distribution=[1 / len(labels)] * len(labels)) for s in stimuli])
    client.force_login(study.owner)
    for tab in ("images", "uncertainty"):
        html = client.get(f"/studies/{study.slug}/compare/?tab={tab}").content.decode()
        assert not re.search(r"\bnan\b", html, re.IGNORECASE), tab
        assert "not enough votes" in html
        assert 'id="few-votes"' in html and "fewer than 10 votes" in html


def test_page_with_no_votes_and_no_model_has_no_nan(client):
    study = StudyFactory()
    StimulusFactory.create_batch(2, study=study)
    client.force_login(study.owner)
    html = client.get(f"/studies/{study.slug}/compare/").content.decode()
    assert not re.search(r"\bnan\b", html, re.IGNORECASE)
    assert "No model has predicted" in html and "No image has votes yet" in html
    assert "Run one from the study page" in html


def test_headline_cards_definitions_and_top_labels_on_a_full_study(client):
    study, models = build_study(images=6, voters=12)
    client.force_login(study.owner)
    html = unescape(client.get(f"/studies/{study.slug}/compare/").content.decode())
    assert html.count('class="headline"') == 2
    assert "Run one from the study page" not in html  # models have predicted: no "no model yet?" hint
    assert re.search(r"picks the crowd's top emotion on \d+% of 6 images; two halves of the crowd agree with each "
                     r"other on \d+%", html)
    for key in compare_text.METRIC_DEFINITIONS:
        assert f'id="def-{key}"' in html
    for key in ("top1_agreement", "mean_js", "mean_kl", "ece", "entropy_spearman"):
        assert f'href="#def-{key}"' in html
    assert 'id="few-votes"' not in html  # 12 votes per image
    uncertainty = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty").content.decode()
    assert "Model's top label" in uncertainty and "top label (ambiguity)" in uncertainty
    probs = np.array(Prediction.objects.filter(model_version=models[0]).values_list("distribution", flat=True)[0])
    assert study.label_set.labels[int(probs.argmax())] in uncertainty
