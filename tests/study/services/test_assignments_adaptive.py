"""Adaptive allocation in the assignment service: minimum first and balanced, then more votes where
people disagree, never past the maximum, and full once every image is settled."""
import pytest

from study.errors import InvalidInput, StudyFull
from study.models import Study
from study.selectors.participants import adaptive_open_order, study_is_full
from study.services.assignments import assignment_allocate
from study.services.studies import study_create
from tests.factories import LabelSetFactory, ParticipantFactory, StimulusFactory, StudyFactory, UserFactory
from tests.study.services.test_assignments import answer_all, regular_vote_counts

pytestmark = pytest.mark.django_db

SPLIT = ["Happiness", "Sadness", "Fear", "Neutral"]


def adaptive_study(n_images=6, **fields):
    defaults = dict(allocation=Study.Allocation.ADAPTIVE, min_votes_per_image=3, max_votes_per_image=12,
                    stability_threshold=0.04, images_per_participant=3)
    study = StudyFactory(**{**defaults, **fields})
    StimulusFactory.create_batch(n_images, study=study)
    return study


def label_for(consensus_ids):
    """Faces in `consensus_ids` get unanimous votes; the others are split four ways."""
    state = {"i": 0}

    def choose(assignment):
        state["i"] += 1
        return "Happiness" if assignment.stimulus_id in consensus_ids else SPLIT[state["i"] % 4]
    return choose


def test_minimum_votes_come_first_and_balanced():
    study = adaptive_study()
    for _ in range(6):  # 6 participants x 3 images = 18 votes = the minimum of 3 for all 6
        participant = ParticipantFactory(study=study)
        assignment_allocate(participant=participant)
        answer_all(participant)
        counts = regular_vote_counts(study)
        assert max(counts) - min(counts) <= 1
    assert regular_vote_counts(study) == [3] * 6


def test_disagreement_gets_more_votes_and_the_study_fills_when_settled():
    study = adaptive_study()
    ids = list(study.stimuli.order_by("pk").values_list("pk", flat=True))
    chooser = label_for(set(ids[:3]))
    for _ in range(60):
        participant = ParticipantFactory(study=study)
        try:
            assignment_allocate(participant=participant)
        except StudyFull:
            break
        answer_all(participant, chooser)
    else:
        pytest.fail("the study never filled")
    counts = regular_vote_counts(study)
    assert max(counts) <= 12
    assert min(counts[3:]) > max(counts[:3]), counts  # the ambiguous faces got more votes
    assert study_is_full(study=study)
    assert adaptive_open_order(study=study) == []


def test_open_assignments_count_so_a_waiting_image_is_not_over_served():
    study = adaptive_study(n_images=4, images_per_participant=2)
    first = ParticipantFactory(study=study)
    taken = {a.stimulus_id for a in assignment_allocate(participant=first)}  # not answered yet
    second = ParticipantFactory(study=study)
    assert taken.isdisjoint(a.stimulus_id for a in assignment_allocate(participant=second))


def test_fixed_studies_keep_the_votes_per_image_rule():
    study = StudyFactory(votes_per_image=1, images_per_participant=2)
    StimulusFactory.create_batch(2, study=study)
    participant = ParticipantFactory(study=study)
    assignment_allocate(participant=participant)
    answer_all(participant)
    assert study_is_full(study=study)


@pytest.mark.parametrize("fields,message", [
    (dict(min_votes_per_image=5, max_votes_per_image=4), "minimum votes"),
    (dict(stability_threshold=0.0), "stability threshold"),
    (dict(allocation="greedy"), "Allocation is one of"),
])
def test_study_create_refuses_bad_adaptive_settings(fields, message):
    with pytest.raises(InvalidInput, match=message):
        study_create(owner=UserFactory(), title="t", slug="adaptive-bad", label_set=LabelSetFactory(), **fields)
