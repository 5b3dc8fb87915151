"""Assignment: balanced, never repeated, expiring, with gold items and exclusion."""
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from study.errors import StudyFull, StudyNotOpen
from study.models import Assignment, Study, Vote
from study.selectors.participants import stimuli_with_load, stimulus_vote_counts, study_is_full
from study.services.assignments import assignment_allocate, gold_trial_count
from study.services.participants import participant_create
from study.services.votes import vote_record
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


def make_study(n_images: int = 10, n_gold: int = 0, **fields) -> Study:
    study = StudyFactory(**fields)
    StimulusFactory.create_batch(n_images, study=study)
    for _ in range(n_gold):
        StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")
    return study


def answer_all(participant, label_for=lambda assignment: "Happiness") -> None:
    for assignment in participant.assignments.filter(answered_at__isnull=True).select_related("stimulus"):
        vote_record(participant=participant, stimulus=assignment.stimulus, label=label_for(assignment), response_ms=700)


def regular_vote_counts(study) -> list[int]:
    counted = dict(
        Vote.objects.filter(stimulus__study=study, stimulus__is_gold=False)
        .values_list("stimulus_id").annotate(n=Count("pk")).values_list("stimulus_id", "n")
    )
    return [counted.get(pk, 0) for pk in study.stimuli.filter(is_gold=False).values_list("pk", flat=True)]


def test_votes_stay_balanced_within_one_while_participants_finish_one_by_one():
    study = make_study(10, votes_per_image=3, images_per_participant=4)
    for _ in range(7):
        participant = ParticipantFactory(study=study)
        assignment_allocate(participant=participant)
        answer_all(participant)
        counts = regular_vote_counts(study)
        assert max(counts) - min(counts) <= 1, counts
    assert sum(regular_vote_counts(study)) == 28


def test_open_assignments_count_so_simultaneous_participants_get_different_images():
    study = make_study(10, votes_per_image=3, images_per_participant=5)
    first, second = ParticipantFactory(study=study), ParticipantFactory(study=study)
    a = {x.stimulus_id for x in assignment_allocate(participant=first)}
    b = {x.stimulus_id for x in assignment_allocate(participant=second)}
    assert not a & b
    loads = list(stimuli_with_load(study=study).values_list("load", flat=True))
    assert loads == [1] * 10


def test_participant_never_gets_the_same_image_twice_even_with_a_big_sequence():
    study = make_study(6, votes_per_image=5, images_per_participant=20)
    sequence = assignment_allocate(participant=ParticipantFactory(study=study))
    ids = [a.stimulus_id for a in sequence]
    assert len(ids) == len(set(ids)) == 6
    assert [a.position for a in sequence] == list(range(6))


def test_images_with_all_their_votes_are_not_served_and_then_the_study_is_full():
    study = make_study(4, votes_per_image=2, images_per_participant=3)
    served = Counter()
    for _ in range(3):  # 3 + 3 + 2 slots = 8 = 4 images x 2 votes
        participant = ParticipantFactory(study=study)
        served.update(a.stimulus_id for a in assignment_allocate(participant=participant))
        answer_all(participant)
    assert set(served.values()) == {2}
    assert study_is_full(study=study)
    with pytest.raises(StudyFull):
        assignment_allocate(participant=ParticipantFactory(study=study))


def test_expired_open_assignment_frees_its_image(settings):
    settings.ASSIGNMENT_EXPIRY_SECONDS = 600
    study = make_study(2, votes_per_image=1, images_per_participant=2)
    abandoned = ParticipantFactory(study=study)
    assignment_allocate(participant=abandoned)
    assert study_is_full(study=study)
    with pytest.raises(StudyFull):
        assignment_allocate(participant=ParticipantFactory(study=study))

    Assignment.objects.filter(participant=abandoned).update(served_at=timezone.now() - timedelta(seconds=601))
    assert not study_is_full(study=study)
    late = ParticipantFactory(study=study)
    assert len(assignment_allocate(participant=late)) == 2
    # The abandoned participant may still answer: the work is kept.
    answer_all(abandoned)
    assert Vote.objects.filter(participant=abandoned).count() == 2


def test_allocation_is_idempotent_and_deterministic_for_the_study_seed():
    study = make_study(10, votes_per_image=3, images_per_participant=4, random_seed=7)
    participant = ParticipantFactory(study=study)
    first = [a.stimulus_id for a in assignment_allocate(participant=participant)]
    assert [a.stimulus_id for a in assignment_allocate(participant=participant)] == first
    assert participant.assignments.count() == 4
    participant.assignments.all().delete()
    assert [a.stimulus_id for a in assignment_allocate(participant=participant)] == first


def test_ties_are_broken_differently_for_different_participants():
    study = make_study(12, votes_per_image=100, images_per_participant=3)
    firsts = set()
    for _ in range(8):
        participant = ParticipantFactory(study=study)
        firsts.add(tuple(a.stimulus_id for a in assignment_allocate(participant=participant)))
    assert len(firsts) == 8


def test_study_that_is_not_live_allocates_nothing():
    study = make_study(3, status=Study.Status.PAUSED)
    participant = ParticipantFactory(study=study)
    with pytest.raises(StudyNotOpen):
        assignment_allocate(participant=participant)
    assert not participant.assignments.exists()


# --- gold (attention) items ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "per_participant", "available", "expected"),
    [(0.2, 10, 5, 2), (0.05, 5, 5, 1), (0.0, 10, 5, 0), (0.2, 10, 0, 0), (0.5, 10, 3, 3), (1.0, 4, 9, 3)],
)
def test_gold_trial_count_follows_the_rate_with_at_least_one(rate, per_participant, available, expected):
    study = StudyFactory.build(gold_rate=rate, images_per_participant=per_participant)
    assert gold_trial_count(study=study, gold_available=available) == expected


def test_gold_items_are_inserted_at_the_gold_rate_at_varying_positions():
    study = make_study(30, n_gold=4, votes_per_image=50, images_per_participant=10, gold_rate=0.2)
    positions = set()
    for _ in range(12):
        sequence = assignment_allocate(participant=ParticipantFactory(study=study))
        gold = [a.position for a in sequence if a.stimulus.is_gold]
        assert len(sequence) == 10 and len(gold) == 2
        positions.add(tuple(gold))
    assert len(positions) > 3


def test_gold_items_do_not_count_toward_the_quota():
    study = make_study(2, n_gold=1, votes_per_image=1, images_per_participant=2, gold_rate=0.5)
    participant = ParticipantFactory(study=study)
    sequence = assignment_allocate(participant=participant)
    assert sorted(a.stimulus.is_gold for a in sequence) == [False, True]
    answer_all(participant)
    # One regular image still needs its vote although the gold item has one too.
    assert not study_is_full(study=study)
    counts = stimulus_vote_counts(study)
    assert all(not study.stimuli.get(pk=pk).is_gold for pk in counts)


def test_participant_below_gold_threshold_is_excluded_and_their_votes_kept_but_not_counted():
    study = make_study(4, n_gold=2, votes_per_image=1, images_per_participant=4, gold_rate=0.5, gold_pass_threshold=0.75)
    cheater = ParticipantFactory(study=study)
    sequence = assignment_allocate(participant=cheater)
    assert sum(a.stimulus.is_gold for a in sequence) == 2
    answer_all(cheater, label_for=lambda a: "Anger")  # gold truth is Happiness
    cheater.refresh_from_db()
    assert cheater.finished_at is not None
    assert (cheater.gold_answered, cheater.gold_correct, cheater.gold_score) == (2, 0, 0.0)
    assert cheater.excluded and "0 of 2" in cheater.exclusion_reason
    assert Vote.objects.filter(participant=cheater).count() == 4
    assert stimulus_vote_counts(study) == {}
    assert sum(n for c in stimulus_vote_counts(study, include_excluded=True).values() for n in c.values()) == 2
    # Their images go back into the pool for someone attentive.
    assert not study_is_full(study=study)


def test_participant_at_or_above_threshold_is_kept():
    study = make_study(4, n_gold=2, votes_per_image=3, images_per_participant=4, gold_rate=0.5, gold_pass_threshold=0.5)
    participant = ParticipantFactory(study=study)
    assignment_allocate(participant=participant)
    gold_seen = []

    def half_right(assignment):
        if assignment.stimulus.is_gold:
            gold_seen.append(assignment)
            return "Happiness" if len(gold_seen) == 1 else "Fear"
        return "Sadness"

    answer_all(participant, label_for=half_right)
    participant.refresh_from_db()
    assert participant.gold_score == 0.5 and not participant.excluded


def test_shuffled_label_order_is_a_fixed_permutation_per_participant():
    study = make_study(1, shuffle_labels=True)
    orders = {tuple(participant_create(study=study, external_ids={}).label_order) for _ in range(10)}
    labels = study.label_set.labels
    assert all(sorted(order) == sorted(labels) for order in orders)
    assert len(orders) > 1
    unshuffled = make_study(1)
    assert participant_create(study=unshuffled, external_ids={}).label_order == labels
