"""stimulus_loads (raw SQL, what allocation reads) counts exactly what stimuli_with_load (the ORM) counts, case by
case: votes of excluded or simulated participants, places held before and after a first vote, expired ones."""
from datetime import timedelta

import pytest
from django.utils import timezone

from study.models import Assignment, Vote
from study.selectors.participants import stimuli_with_load, stimulus_loads
from study.services.assignments import assignment_allocate
from study.services.participants import participant_create
from study.services.votes import vote_record
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


def _orm_loads(study) -> dict[int, tuple[int, int]]:
    rows = stimuli_with_load(study=study).filter(is_gold=False).values_list("pk", "n_votes", "n_open")
    return {pk: (votes, held) for pk, votes, held in rows}


def _age(participant, seconds: int, *, unanswered_only: bool = True) -> None:
    rows = Assignment.objects.filter(participant=participant)
    if unanswered_only:
        rows = rows.filter(answered_at__isnull=True)
    rows.update(served_at=timezone.now() - timedelta(seconds=seconds))


def _joined(study, address: str, votes: int = 0):
    participant = participant_create(study=study, external_ids={}, client_address=address)
    sequence = assignment_allocate(participant=participant)
    for assignment in sequence[:votes]:
        vote_record(participant=participant, stimulus=assignment.stimulus, label="Fear", response_ms=700)
    return participant


def test_the_raw_loads_are_the_orm_loads_in_every_case(settings):
    settings.ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS = 120
    settings.ASSIGNMENT_EXPIRY_SECONDS = 1800
    study = StudyFactory(status="live", votes_per_image=6, images_per_participant=3, gold_rate=0)
    StimulusFactory.create_batch(8, study=study)
    gold = StimulusFactory(study=study, is_gold=True, ground_truth="Fear")
    _age(_joined(study, "192.0.2.1", votes=2), 600)     # voted: its last place held 10 min (within the expiry)
    _joined(study, "192.0.2.2")                         # no vote yet, just served: held
    _age(_joined(study, "192.0.2.3"), 200)              # no vote, past the short hold: free again
    _age(_joined(study, "192.0.2.4", votes=1), 1900)    # voted, past the expiry: free again
    excluded = _joined(study, "192.0.2.5", votes=1)     # excluded: neither its votes nor its places count
    excluded.excluded = True
    excluded.save()
    simulated = ParticipantFactory(study=study, is_simulated=True)  # a simulated panel's votes take no slot
    for stimulus in study.stimuli.filter(is_gold=False)[:3]:
        Vote.objects.create(participant=simulated, stimulus=stimulus, label="Fear", response_ms=1)
    Assignment.objects.create(participant=simulated, stimulus=gold, position=0)

    raw = {pk: (votes, held) for pk, votes, held in stimulus_loads(study=study)}
    assert raw == _orm_loads(study)
    assert gold.pk not in raw and len(raw) == 8
    totals = tuple(map(sum, zip(*raw.values(), strict=True)))
    assert totals == (3, 4)  # votes: 2 + 1 (the excluded and simulated ones left out); held: 1 + 3


def test_the_raw_loads_move_with_time_as_the_orm_loads_do(settings):
    settings.ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS = 120
    study = StudyFactory(status="live", votes_per_image=3, images_per_participant=2, gold_rate=0)
    StimulusFactory.create_batch(4, study=study)
    _joined(study, "192.0.2.1")
    later = timezone.now() + timedelta(seconds=121)
    assert sum(held for _, _, held in stimulus_loads(study=study)) == 2
    assert sum(held for _, _, held in stimulus_loads(study=study, now=later)) == 0
    assert {pk: (v, h) for pk, v, h in stimulus_loads(study=study, now=later)} == {
        pk: (v, h) for pk, v, h in stimuli_with_load(study=study, now=later).values_list("pk", "n_votes", "n_open")}
