"""Votes: one per participant and image, recorded idempotently.

Double clicks, the back button and retried requests all end up here with a vote that may already
exist; the first vote always wins and is returned unchanged. The assignment row lock serialises
concurrent submits of the same vote, and the unique constraint (participant, stimulus) backs it up.
"""
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from study.errors import InvalidResponseTime, UnknownLabel
from study.models import Participant, Stimulus, Vote
from study.services.assignments import assignment_lock_for_vote
from study.services.participants import participant_finish, participant_require_can_continue

MAX_RESPONSE_MS = 3_600_000


def vote_clean_label(*, participant: Participant, label: str) -> str:
    """The study's spelling of `label` (matched case-insensitively); UnknownLabel otherwise."""
    labels = participant.study.label_set.answers
    by_key = {name.casefold(): name for name in labels}
    canonical = by_key.get(str(label).strip().casefold())
    if canonical is None:
        raise UnknownLabel(f"Unknown emotion {str(label)[:64]!r}; choose one of: {', '.join(labels)}.")
    return canonical


def vote_clean_response_ms(response_ms: object) -> int:
    """An integer number of milliseconds in 0..3,600,000; InvalidResponseTime otherwise."""
    try:
        value = int(response_ms)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InvalidResponseTime("response_ms must be a whole number of milliseconds.") from None
    if (isinstance(response_ms, float) and not response_ms.is_integer()) or not 0 <= value <= MAX_RESPONSE_MS:
        raise InvalidResponseTime(f"response_ms must be a whole number between 0 and {MAX_RESPONSE_MS}.")
    return value


@transaction.atomic
def vote_record(*, participant: Participant, stimulus: Stimulus, label: str, response_ms: int) -> Vote:
    """Record one vote. Idempotent: a repeated submit returns the first vote unchanged.

    Raises UnknownLabel / InvalidResponseTime for bad input, NotAssigned for an image that is not
    one of the participant's trials, StudyNotOpen when a new vote arrives while the study is not live.
    Answering the last trial finishes the participant (gold scoring, exclusion) in the same transaction.
    """
    label = vote_clean_label(participant=participant, label=label)
    response_ms = vote_clean_response_ms(response_ms)
    assignment = assignment_lock_for_vote(participant=participant, stimulus=stimulus)
    existing = Vote.objects.filter(participant=participant, stimulus=stimulus).first()
    if existing is not None:
        return existing
    participant_require_can_continue(participant)

    vote, created = Vote.objects.get_or_create(
        participant=participant, stimulus=stimulus, defaults={"label": label, "response_ms": response_ms}
    )
    if not created:
        return vote
    assignment.answered_at = timezone.now()
    assignment.save(update_fields=["answered_at"])
    if stimulus.is_gold and stimulus.ground_truth:
        correct = int(label.casefold() == stimulus.ground_truth.strip().casefold())
        Participant.objects.filter(pk=participant.pk).update(
            gold_answered=F("gold_answered") + 1, gold_correct=F("gold_correct") + correct
        )
    if not participant.assignments.filter(answered_at__isnull=True).exists():
        participant_finish(participant=participant)
    participant.refresh_from_db()
    return vote
