"""vote_record: idempotent, checked against the assignment, validated; finishing and vote counts."""
import pytest

from study.errors import InvalidResponseTime, NotAssigned, StudyNotOpen, UnknownLabel
from study.models import Study, Vote
from study.selectors.participants import participant_progress, stimulus_vote_counts
from study.services.assignments import assignment_allocate
from study.services.votes import vote_record
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def started():
    """A participant with a three-image sequence, and that sequence."""
    study = StudyFactory(votes_per_image=3, images_per_participant=3)
    StimulusFactory.create_batch(3, study=study)
    participant = ParticipantFactory(study=study)
    return participant, assignment_allocate(participant=participant)


def test_vote_is_stored_and_marks_the_assignment_answered(started):
    participant, sequence = started
    vote = vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=1234)
    assert (vote.label, vote.response_ms) == ("Fear", 1234)
    sequence[0].refresh_from_db()
    assert sequence[0].answered_at is not None
    assert participant_progress(participant=participant).answered == 1


def test_second_submit_of_same_vote_returns_first_vote_unchanged(started):
    participant, sequence = started
    first = vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=900)
    again = vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Anger", response_ms=50)
    assert again.pk == first.pk
    assert (again.label, again.response_ms) == ("Fear", 900)
    assert Vote.objects.filter(participant=participant).count() == 1


def test_vote_for_an_image_not_assigned_to_the_participant_is_rejected(started):
    participant, _ = started
    other_study_image = StimulusFactory()
    same_study_unassigned = StimulusFactory(study=participant.study)
    for stimulus in (other_study_image, same_study_unassigned):
        with pytest.raises(NotAssigned):
            vote_record(participant=participant, stimulus=stimulus, label="Fear", response_ms=900)
    assert not Vote.objects.exists()


def test_vote_for_another_participants_image_is_rejected(started):
    participant, sequence = started
    stranger = ParticipantFactory(study=participant.study)
    with pytest.raises(NotAssigned):
        vote_record(participant=stranger, stimulus=sequence[0].stimulus, label="Fear", response_ms=900)


def test_unknown_label_is_rejected_and_known_labels_are_matched_case_insensitively(started):
    participant, sequence = started
    with pytest.raises(UnknownLabel, match="Happy"):
        vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Happy", response_ms=900)
    with pytest.raises(UnknownLabel):
        vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Contempt", response_ms=900)
    vote = vote_record(participant=participant, stimulus=sequence[0].stimulus, label=" happiness ", response_ms=900)
    assert vote.label == "Happiness"


@pytest.mark.parametrize("bad", [-1, 3_600_001, "abc", None, 1.5, "", float("inf"), float("nan"), {"a": 1}])
def test_response_time_outside_zero_to_one_hour_is_rejected(started, bad):
    participant, sequence = started
    with pytest.raises(InvalidResponseTime):
        vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=bad)
    assert not Vote.objects.exists()


@pytest.mark.parametrize("good", [0, 3_600_000, "250", 12.0])
def test_response_time_bounds_are_inclusive(started, good):
    participant, sequence = started
    vote = vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=good)
    assert vote.response_ms == int(float(good))


def test_answering_the_last_trial_finishes_the_participant(started):
    participant, sequence = started
    for assignment in sequence[:-1]:
        vote_record(participant=participant, stimulus=assignment.stimulus, label="Fear", response_ms=500)
    participant.refresh_from_db()
    assert participant.finished_at is None
    vote_record(participant=participant, stimulus=sequence[-1].stimulus, label="Fear", response_ms=500)
    assert participant.finished_at is not None
    assert participant.gold_score is None and not participant.excluded  # no gold items, no exclusion


def test_gold_answers_update_the_participants_counters():
    study = StudyFactory(images_per_participant=3, gold_rate=0.5)
    StimulusFactory.create_batch(2, study=study)
    StimulusFactory(study=study, is_gold=True, ground_truth="Sadness")
    participant = ParticipantFactory(study=study)
    gold = next(a for a in assignment_allocate(participant=participant) if a.stimulus.is_gold)
    vote_record(participant=participant, stimulus=gold.stimulus, label="sadness", response_ms=500)
    vote_record(participant=participant, stimulus=gold.stimulus, label="sadness", response_ms=500)  # repeat
    participant.refresh_from_db()
    assert (participant.gold_answered, participant.gold_correct) == (1, 1)


def test_new_votes_are_refused_while_the_study_is_paused_but_a_repeat_still_returns_the_first(started):
    participant, sequence = started
    first = vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=500)
    Study.objects.filter(pk=participant.study_id).update(status=Study.Status.PAUSED)
    participant.refresh_from_db()
    with pytest.raises(StudyNotOpen):
        vote_record(participant=participant, stimulus=sequence[1].stimulus, label="Fear", response_ms=500)
    assert vote_record(participant=participant, stimulus=sequence[0].stimulus, label="Fear", response_ms=9).pk == first.pk


def test_stimulus_vote_counts_aggregates_per_image_and_label():
    study = StudyFactory(votes_per_image=5, images_per_participant=2)
    a, b = StimulusFactory.create_batch(2, study=study)
    gold = StimulusFactory(study=study, is_gold=True, ground_truth="Fear")
    labels = {a.pk: ["Fear", "Fear", "Anger"], b.pk: ["Neutral"]}
    for stimulus_id, votes in labels.items():
        for label in votes:
            participant = ParticipantFactory(study=study)
            stimulus = study.stimuli.get(pk=stimulus_id)
            participant.assignments.create(stimulus=stimulus, position=0)
            vote_record(participant=participant, stimulus=stimulus, label=label, response_ms=100)
    flagged = ParticipantFactory(study=study, excluded=True)
    flagged.assignments.create(stimulus=b, position=0)
    flagged.assignments.create(stimulus=gold, position=1)
    vote_record(participant=flagged, stimulus=b, label="Anger", response_ms=100)
    vote_record(participant=flagged, stimulus=gold, label="Fear", response_ms=100)

    assert stimulus_vote_counts(study) == {a.pk: {"Fear": 2, "Anger": 1}, b.pk: {"Neutral": 1}}
    assert stimulus_vote_counts(study, include_excluded=True)[b.pk] == {"Neutral": 1, "Anger": 1}
    assert stimulus_vote_counts(study, include_excluded=True, include_gold=True)[gold.pk] == {"Fear": 1}
