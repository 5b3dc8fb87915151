"""Custom label sets (names, order, keys), FER+'s non-emotion answers, and which models serve which set."""
import csv
import io
import re

import pytest
from django.core.management import call_command

from study.errors import InvalidInput
from study.models import LabelSet, ModelVersion, Study
from study.selectors.compare import comparison_data
from study.selectors.label_sets import label_set_default, models_for_label_set
from study.services.assignments import assignment_allocate
from study.services.label_sets import label_set_create, label_set_keys, label_set_parse_lines
from study.services.votes import vote_record
from tests.factories import (
    AFFECTNET8_CLASSES,
    ModelVersionFactory,
    ParticipantFactory,
    StimulusFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def csv_rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
FERPLUS = "FER+ (8 + Unknown, Not a face)"


def test_parse_and_create_with_keys_and_non_emotion_answers():
    names, keys = label_set_parse_lines("Joy = j\n\n  Anger=a \nCalm = c\n")
    label_set = label_set_create(name="Mine", labels=names, non_emotion_labels=["Unsure"], keys=[*keys, "u"])
    assert label_set.answers == ["Joy", "Anger", "Calm", "Unsure"]
    assert label_set_keys(label_set) == ["j", "a", "c", "u"]
    plain = label_set_create(name="Plain", labels=["A", "B"])
    assert label_set_keys(plain) == ["1", "2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "", "labels": ["A", "B"]}, "name"),
    ({"name": "RAF-DB basic-7", "labels": ["A", "B"]}, "already exists"),
    ({"name": "X", "labels": ["Only"]}, "at least two"),
    ({"name": "X", "labels": ["A", "a"]}, "appears twice"),
    ({"name": "X", "labels": ["A", "B"], "non_emotion_labels": ["b"]}, "appears twice"),
    ({"name": "X", "labels": ["A", "B"], "keys": ["a", ""]}, "every answer a key, or none"),
    ({"name": "X", "labels": ["A", "B"], "keys": ["a", "a"]}, "more than one answer"),
    ({"name": "X", "labels": ["A", "B"], "keys": ["ab", "c"]}, "single letters or digits"),
])
def test_bad_label_sets_are_refused_with_a_message(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        label_set_create(**kwargs)


def test_label_set_pages(client):
    client.force_login(UserFactory(is_staff=False))
    page = client.get("/studies/label-sets/").content.decode()
    assert FERPLUS in page and "<em>Not a face</em>" in page
    created = client.post("/studies/label-sets/new/", {"name": "Valence 3", "emotions": "Positive = p\nNegative = n",
                                                       "non_emotion": "Unknown = u"})
    assert created.status_code == 302 and LabelSet.objects.get(name="Valence 3").keys == ["p", "n", "u"]
    bad = client.post("/studies/label-sets/new/", {"name": "Bad", "emotions": "One"})
    assert bad.status_code == 400 and b"at least two emotions" in bad.content


def ferplus_study(**fields) -> Study:
    study = StudyFactory(label_set=LabelSet.objects.get(name=FERPLUS), images_per_participant=2, **fields)
    StimulusFactory.create_batch(2, study=study)
    return study


def test_non_emotion_answers_are_votes_but_not_part_of_the_emotion_distribution(tmp_path):
    study = ferplus_study()
    participant = ParticipantFactory(study=study, label_order=[])
    first, second = assignment_allocate(participant=participant)
    vote_record(participant=participant, stimulus=first.stimulus, label="not a face", response_ms=900)
    vote_record(participant=participant, stimulus=second.stimulus, label="Happiness", response_ms=900)
    data = comparison_data(study=study)
    assert data.counts.sum() == 1 and data.non_emotion_counts == {"Unknown": 0, "Not a face": 1}
    call_command("export_study", study.slug, out=tmp_path, stdout=io.StringIO())
    rows = {r["stimulus"]: r for r in csv_rows(tmp_path / "stimuli.csv")}
    row = rows[str(first.stimulus.public_id)]
    assert row["other_Not a face"] == "1" and row["n_votes"] == "0" and row["p_Happiness"] == ""
    assert "other_<answer>" in (tmp_path / "codebook.md").read_text()
    assert (tmp_path / "distributions.csv").read_text().splitlines()[0] == ",".join(["file", *study.label_set.labels])


def test_trial_page_shows_non_emotion_answers_last_with_their_keys(client):
    study = ferplus_study(shuffle_labels=True)
    client.get(f"/s/{study.slug}/")
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
    client.post(f"/s/{study.slug}/start/")
    page = client.get(f"/s/{study.slug}/trial/").content.decode()
    assert page.index('value="Unknown"') < page.index('value="Not a face"')
    assert all(page.index(f'value="{label}"') < page.index('value="Unknown"') for label in study.label_set.labels)
    assert 'class="choice non-emotion" data-key="0"' in page  # the tenth answer gets key 0


def test_new_study_form_defaults_to_the_label_set_the_models_serve(client):
    client.force_login(UserFactory(is_staff=False))
    label_set_create(name="Valence", labels=["Positive", "Negative"])
    ModelVersionFactory(name="valence-model", classes=["Negative", "Positive"])
    assert label_set_default().name == "Valence"  # the only set a registered model serves
    ModelVersion.objects.all().delete()
    ModelVersionFactory(name="demo-raf", is_demo=True)  # RAF-DB basic-7 classes
    assert label_set_default().name == "RAF-DB basic-7"
    page = client.get("/studies/new/").content.decode()
    selected = re.search(r'<option value="\d+" selected>([^<]*)', page).group(1)
    assert selected.startswith("RAF-DB basic-7") and "served by demo-raf" in page and "no registered model serves it" in page


def test_predict_form_offers_only_models_that_serve_the_study_and_says_why_not(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, label_set=LabelSet.objects.get(name="AffectNet-8"))
    ModelVersionFactory(name="raf-only")  # lacks Contempt
    ModelVersionFactory(name="affect", classes=AFFECTNET8_CLASSES)
    fits = {fit.model.name: fit for fit in models_for_label_set(label_set=study.label_set)}
    assert fits["affect"].serves and not fits["raf-only"].serves and "Contempt" in fits["raf-only"].reason
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/predict/").content.decode()
    options = page.split('name="model"')[1].split("</select>")[0]
    serving, partial = options.split('id="partial-models"')
    assert "affect" in serving and "raf-only" not in serving
    # a model that lacks some labels is offered apart, for the "allow missing labels" box
    assert "raf-only" in partial and "no class for Contempt" in partial and fits["raf-only"].with_missing_labels
    assert 'id="unfit-models"' in page and "no class for Contempt" in page
    ModelVersionFactory(name="valence-only", classes=["Negative", "Positive"])  # nothing in common: not offered
    options = client.get(f"/studies/{study.slug}/predict/").content.decode().split('name="model"')[1].split("</select>")[0]
    assert "valence-only" not in options


def test_a_model_lacking_labels_runs_from_the_study_page_with_allow_missing_labels(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, label_set=LabelSet.objects.get(name="AffectNet-8"))
    StimulusFactory(study=study)
    raf = ModelVersionFactory(name="raf-only", owner=owner)  # lacks Contempt
    client.force_login(owner)
    assert f'<option value="{raf.pk}">raf-only' in client.get(f"/studies/{study.slug}/").content.decode()
    refused = client.post(f"/studies/{study.slug}/predict/", {"model": raf.pk})
    assert refused.status_code == 400 and "allow missing labels" in refused.content.decode()
    response = client.post(f"/studies/{study.slug}/predict/", {"model": raf.pk, "allow_missing": "on"})
    assert response.status_code == 302 and study.prediction_jobs.get().allow_missing_labels


def test_comparison_page_reports_non_emotion_answers_apart(client):
    owner = UserFactory(is_staff=False)
    study = ferplus_study(owner=owner)
    participant = ParticipantFactory(study=study, label_order=[])
    first, second = assignment_allocate(participant=participant)
    vote_record(participant=participant, stimulus=first.stimulus, label="Unknown", response_ms=900)
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/compare/").content.decode()
    assert 'id="non-emotion-counts"' in page and "Unknown 1" in page and "Not a face 0" in page
