"""Votes: one per participant and image, recorded idempotently.

Double clicks, the back button and retried requests all end up here with a vote that may already
exist; the first vote always wins and is returned unchanged. The assignment row lock serialises
concurrent submits of the same vote, and the unique constraint (participant, stimulus) backs it up.
"""
import uuid
from dataclasses import dataclass, replace

from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from study.errors import InvalidResponseTime, UnknownLabel
from study.models import Assignment, Participant, Stimulus, Vote
from study.selectors.participants import participant_cookie_tokens
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


@dataclass(frozen=True)
class VoteOutcome:
    """A recorded (or repeated) vote and where its participant stands afterwards."""

    vote: Vote
    participant: Participant
    answered: int
    total: int
    upcoming: tuple[uuid.UUID, ...] = ()  # the next unanswered images (current, next), when the caller asked

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.answered >= self.total


def _record_locked(*, assignment: Assignment, label: str, response_ms: object) -> VoteOutcome:
    """The vote itself, given the participant's assignment already row-locked (with participant, study,
    label set and stimulus loaded). Two statements for a regular vote (insert, mark answered) when the locking
    query also counted the participant's progress, three otherwise; one more for a gold item."""
    participant, stimulus = assignment.participant, assignment.stimulus
    label = vote_clean_label(participant=participant, label=label)
    response_ms = vote_clean_response_ms(response_ms)
    vote = None
    if assignment.answered_at is not None:  # a repeat (double click, back button, retry): the first vote wins
        vote = Vote.objects.filter(participant=participant, stimulus=stimulus).first()
        if vote is not None:
            vote.participant, vote.stimulus = participant, stimulus
    if vote is None:
        participant_require_can_continue(participant)  # live, or paused letting starters finish, or a preview
        # The assignment lock serialises submits of this vote, and answered_at is set in this transaction:
        # no vote can exist yet, so a plain insert (the unique constraint still backs it up).
        vote = Vote.objects.create(participant=participant, stimulus=stimulus, label=label, response_ms=response_ms)
        Assignment.objects.filter(pk=assignment.pk).update(answered_at=vote.created_at)
        if stimulus.is_gold and stimulus.ground_truth:
            correct = int(label.casefold() == stimulus.ground_truth.strip().casefold())
            Participant.objects.filter(pk=participant.pk).update(
                gold_answered=F("gold_answered") + 1, gold_correct=F("gold_correct") + correct
            )
    if hasattr(assignment, "n_total"):  # counted by the locking query (the fast path): no extra round trip
        newly = int(assignment.answered_at is None)
        counts = {"total": assignment.n_total, "answered": assignment.n_answered + newly}
    else:
        counts = Assignment.objects.filter(participant=participant).aggregate(
            total=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False))
        )
    outcome = VoteOutcome(vote=vote, participant=participant, answered=counts["answered"], total=counts["total"])
    if outcome.finished and participant.finished_at is None:
        participant = participant_finish(participant=participant)  # once per participant: scoring, exclusion
        outcome = VoteOutcome(vote=vote, participant=participant, answered=outcome.answered, total=outcome.total)
    return outcome


def _count_of_participant(**conditions) -> Coalesce:
    """How many of the same participant's assignments (matching `conditions`), as a correlated subquery."""
    counted = (Assignment.objects.filter(participant=OuterRef("participant"), **conditions).order_by()
               .values("participant").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _upcoming_image(position: int) -> Subquery:
    """The public id of the participant's `position`-th (0-based) unanswered image after this one, as a subquery."""
    unanswered = (Assignment.objects.filter(participant=OuterRef("participant"), answered_at__isnull=True)
                  .exclude(pk=OuterRef("pk")).order_by("position").values("stimulus__public_id"))
    return Subquery(unanswered[position:position + 1])


def vote_submit(*, slug: str, cookies, stimulus_public_id: uuid.UUID, label: str,
                response_ms: object, with_upcoming: bool = False) -> VoteOutcome | None:
    """The vote path of a browser, in as few round trips as possible: BEGIN, one locking lookup, INSERT,
    UPDATE, COMMIT (5; a gold item adds one, the last vote of a participant adds the finish).

    One query finds and locks the assignment together with its participant (from the study's cookie), the
    study, its label set, the image and the participant's progress counts. Returns None when they do not
    match (unknown study, no participant, an image that is not this participant's): the caller then takes
    the general path, which explains why. with_upcoming: the same query also finds the next two images to show
    (outcome.upcoming), so a JSON client needs no second request for its next trial.
    Raises the same domain errors as vote_record.
    """
    tokens = participant_cookie_tokens(cookies)
    if not tokens:
        return None
    with transaction.atomic():
        lookup = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("participant__study__label_set", "stimulus")
            .annotate(n_total=_count_of_participant(), n_answered=_count_of_participant(answered_at__isnull=False))
            .filter(participant__token__in=list(tokens.values())[:20], participant__study__slug=slug,
                    stimulus__public_id=stimulus_public_id)
        )
        if with_upcoming:
            lookup = lookup.annotate(upcoming_0=_upcoming_image(0), upcoming_1=_upcoming_image(1))
        found = lookup.order_by()[:1]  # at most one row matches: no ORDER BY (the default ordering joins and sorts)
        assignment = found[0] if found else None
        if assignment is None or tokens.get(assignment.participant.study_id) != assignment.participant.token:
            return None
        outcome = _record_locked(assignment=assignment, label=label, response_ms=response_ms)
    if with_upcoming:
        upcoming = tuple(key for key in (assignment.upcoming_0, assignment.upcoming_1) if key is not None)
        outcome = replace(outcome, upcoming=upcoming)
    return outcome


@transaction.atomic
def vote_record(*, participant: Participant, stimulus: Stimulus, label: str, response_ms: int) -> Vote:
    """Record one vote. Idempotent: a repeated submit returns the first vote unchanged.

    Raises UnknownLabel / InvalidResponseTime for bad input, NotAssigned for an image that is not
    one of the participant's trials, StudyNotOpen when a new vote arrives while the study is not live.
    Answering the last trial finishes the participant (gold scoring, exclusion) in the same transaction.
    """
    vote_clean_label(participant=participant, label=label)
    vote_clean_response_ms(response_ms)
    assignment = assignment_lock_for_vote(participant=participant, stimulus=stimulus)
    assignment.participant, assignment.stimulus = participant, stimulus
    outcome = _record_locked(assignment=assignment, label=label, response_ms=response_ms)
    if outcome.vote.stimulus_id == stimulus.pk and (stimulus.is_gold or outcome.finished):
        participant.refresh_from_db()  # gold counts or the finish changed the row
    return outcome.vote
