"""Simulated participants: seed_demo loads the synthetic faces' annotator panel as flagged votes; they fill the
comparison view, never a real participant's quota slot, show in the UI and exports, and one switch leaves
them out of the human distributions."""
import csv
import io

import numpy as np
import pytest
from django.core.management import call_command

from study import exports
from study.errors import InvalidInput
from study.models import Participant, Stimulus, Study, Vote
from study.selectors.compare import comparison_data
from study.selectors.participants import stimulus_vote_counts, study_open_slots
from study.services.simulated import simulated_panel_load
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory, VoteFactory

pytestmark = pytest.mark.django_db


def seed(count: int = 12) -> Study:
    call_command("seed_demo", "--count", str(count), stdout=io.StringIO(), stderr=io.StringIO())
    return Study.objects.get(slug="demo")


def rows(study, name):
    return list(csv.DictReader(io.StringIO(b"".join(exports.stream(study, name)).decode())))


def test_seed_demo_stores_the_panel_votes_of_the_synthetic_faces_as_simulated_participants():
    from ml.data.synthetic import generate_faces

    study = seed(12)
    faces = generate_faces(12, seed=0, classes=list(study.label_set.labels))
    panel = Participant.objects.filter(study=study, is_simulated=True)
    assert panel.count() == max(int(f.votes.sum()) for f in faces) == 10
    assert all(p.finished_at and p.external_ids["simulated_panel"] == "synthetic seed=0" for p in panel)
    counts = stimulus_vote_counts(study, include_gold=True)
    labels = study.label_set.labels
    for i, face in enumerate(faces):
        stimulus = Stimulus.objects.get(study=study, original_name=f"synthetic_{i:04d}.png")
        expected = {label: int(n) for label, n in zip(labels, face.votes, strict=True) if n}
        assert counts[stimulus.pk] == expected  # the manifest's votes_<Class> columns, vote for vote
    assert not Vote.objects.filter(participant__is_simulated=True).exclude(response_ms=0).exists()


def test_seed_demo_twice_loads_the_panel_once():
    study = seed(12)
    before = Vote.objects.count()
    seed(12)
    assert Vote.objects.count() == before
    assert Participant.objects.filter(study=study, is_simulated=True).count() == 10


def test_simulated_votes_never_take_a_real_participants_quota_slot():
    study = seed(12)
    regular = study.stimuli.filter(is_gold=False).count()
    assert study_open_slots(study=study).count() == regular  # the panel's 10 votes per image count for nothing


def test_the_comparison_is_full_from_the_first_minute_and_real_votes_add_to_it():
    study = seed(12)
    data = comparison_data(study=study)
    assert (data.n_votes == 10).all() and len(data.n_votes) == study.stimuli.filter(is_gold=False).count()
    person = ParticipantFactory(study=study)
    stimulus = Stimulus.objects.get(pk=data.stimuli[0]["id"])
    VoteFactory(participant=person, stimulus=stimulus, label="Fear")
    assert comparison_data(study=study).n_votes[0] == 11


def test_one_click_leaves_simulated_votes_out_of_the_human_distributions(client):
    study = seed(12)
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert 'id="simulated-panel"' in page and "Leave simulated votes out" in page
    response = client.post(f"/studies/{study.slug}/simulated/", {"include": "0"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert not study.include_simulated
    assert comparison_data(study=study).n_votes.sum() == 0
    assert "Count simulated votes again" in client.get(f"/studies/{study.slug}/").content.decode()
    distributions = rows(study, "distributions.csv")
    assert all(int(r[label]) == 0 for r in distributions for label in study.label_set.labels)
    client.post(f"/studies/{study.slug}/simulated/", {"include": "1", "next": "//evil.example/"})
    study.refresh_from_db()
    assert study.include_simulated and comparison_data(study=study).n_votes.sum() > 0


def test_exports_flag_simulated_votes_and_participants():
    study = seed(12)
    person = ParticipantFactory(study=study)
    VoteFactory(participant=person, stimulus=study.stimuli.first(), label="Fear")
    votes = rows(study, "votes.csv")
    assert {v["is_simulated"] for v in votes} == {"0", "1"}
    assert sum(v["is_simulated"] == "0" for v in votes) == 1
    people = rows(study, "participants.csv")
    assert sum(p["is_simulated"] == "1" for p in people) == 10 and sum(p["is_simulated"] == "0" for p in people) == 1
    assert "is_simulated" in b"".join(exports.stream(study, "codebook.md")).decode()


def test_the_ui_shows_simulated_counts_as_badges(client):
    study = seed(12)
    client.force_login(study.owner)
    listing = client.get("/studies/").content.decode()
    assert "simulated</span>" in listing
    compare = client.get(f"/studies/{study.slug}/compare/").content.decode()
    assert 'id="simulated-note"' in compare and "10 simulated" in compare
    images = client.get(f"/studies/{study.slug}/images/").content.decode()
    assert "+10 simulated" in images


def test_a_panel_with_counts_for_another_studys_image_or_the_wrong_length_is_refused():
    study = StudyFactory()
    other = StimulusFactory()
    with pytest.raises(InvalidInput, match="not in study"):
        simulated_panel_load(study=study, counts={other.pk: [1] * 7}, panel="p")
    mine = StimulusFactory(study=study)
    with pytest.raises(InvalidInput, match="7 non-negative counts"):
        simulated_panel_load(study=study, counts={mine.pk: [1, 2]}, panel="p")
    assert not Participant.objects.filter(study=study).exists()


def test_panel_members_vote_once_per_image():
    study = StudyFactory()
    stimuli = StimulusFactory.create_batch(3, study=study)
    counts = {s.pk: list(np.eye(7, dtype=int)[k] * (k + 1)) for k, s in enumerate(stimuli)}
    stored = simulated_panel_load(study=study, counts=counts, panel="toy", seed=1)
    assert stored == 1 + 2 + 3
    assert Participant.objects.filter(study=study, is_simulated=True).count() == 3
    per_person = Vote.objects.filter(stimulus__study=study).values_list("participant", "stimulus")
    assert len(set(per_person)) == len(per_person)
