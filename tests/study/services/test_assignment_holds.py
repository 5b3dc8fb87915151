"""Places held by participants who never vote free up quickly; consent+Start is rate-limited per client;
a study counts held places apart from answered ones."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from study.errors import StudyFull, TooManyRequests
from study.models import Assignment
from study.selectors.participants import study_is_full
from study.selectors.studies import study_dashboard
from study.services.assignments import FULL_MESSAGE, HELD_MESSAGE, assignment_allocate
from study.services.participants import participant_create
from study.services.votes import vote_record
from tests.factories import StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(settings):
    settings.ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS = 120
    settings.ASSIGNMENT_EXPIRY_SECONDS = 1800
    study = StudyFactory(status="live", votes_per_image=1, images_per_participant=3, gold_rate=0)
    StimulusFactory.create_batch(6, study=study)
    return study


def _start(study, address="198.51.100.1"):
    participant = participant_create(study=study, external_ids={}, client_address=address)
    assignment_allocate(participant=participant)
    return participant


def _age(participant, seconds: int) -> None:
    Assignment.objects.filter(participant=participant).update(served_at=timezone.now() - timedelta(seconds=seconds))


def test_scripted_starts_without_a_vote_stop_holding_places_after_the_short_hold(study):
    scripted = [_start(study, f"203.0.113.{i}") for i in range(2)]
    assert study_is_full(study=study)
    with pytest.raises(StudyFull) as refused:
        _start(study, "192.0.2.50")
    assert refused.value.message == HELD_MESSAGE  # held, not answered: "try again", not "full"
    for participant in scripted:
        _age(participant, 121)
    assert not study_is_full(study=study)
    assert _start(study, "192.0.2.50").assignments.count() == 3


def test_after_a_first_vote_the_long_expiry_applies(study):
    voter = _start(study)
    first = voter.assignments.order_by("position").first()
    vote_record(participant=voter, stimulus=first.stimulus, label="Happiness", response_ms=900)
    _age(voter, 600)  # 10 minutes: past the short hold, well within the 30-minute expiry
    _start(study, "192.0.2.9")
    with pytest.raises(StudyFull):
        _start(study, "192.0.2.10")
    _age(voter, 1801)
    assert not study_is_full(study=study)


def test_the_dashboard_counts_held_places_apart_from_votes(study):
    voter = _start(study)
    vote_record(participant=voter, stimulus=voter.assignments.first().stimulus, label="Happiness", response_ms=900)
    dashboard = study_dashboard(study=study)
    assert (dashboard.votes, dashboard.held) == (1, 2)


def test_a_study_with_every_vote_answered_says_full(study):
    for i in range(2):
        participant = _start(study, f"203.0.113.{i}")
        for assignment in participant.assignments.all():
            vote_record(participant=participant, stimulus=assignment.stimulus, label="Fear", response_ms=500)
    with pytest.raises(StudyFull) as refused:
        _start(study, "192.0.2.50")
    assert refused.value.message == FULL_MESSAGE


def test_new_sessions_are_rate_limited_per_client_address(study, settings):
    settings.PARTICIPANT_STARTS_PER_CLIENT = 3
    for _ in range(3):
        participant_create(study=study, external_ids={}, client_address="203.0.113.7")
    with pytest.raises(TooManyRequests):
        participant_create(study=study, external_ids={}, client_address="203.0.113.7")
    participant_create(study=study, external_ids={}, client_address="203.0.113.8")  # another client is fine


def test_the_consent_page_answers_429_to_a_client_over_the_limit(study, settings):
    settings.PARTICIPANT_STARTS_PER_CLIENT = 2
    statuses = []
    for _ in range(3):
        client = Client(REMOTE_ADDR="203.0.113.77")  # a fresh cookie jar each time, as a script would
        response = client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
        statuses.append(response.status_code)
    assert statuses == [302, 302, 429]
    assert Client(REMOTE_ADDR="203.0.113.78").post(f"/s/{study.slug}/consent/", {"consent": "agree"}).status_code == 302
