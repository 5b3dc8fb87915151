"""Votes: one per participant and image, recorded idempotently.

Double clicks, the back button and retried requests all end up here with a vote that may already
exist; the first vote always wins and is returned unchanged. The assignment row lock serialises
concurrent submits of the same vote, and the unique constraint (participant, stimulus) backs it up.

Two paths with the same guarantees: vote_submit, the hot path of every participant's vote, in raw SQL (a few
statements, no ORM); vote_record, the general path through the ORM, which the views take when vote_submit finds
nothing to vote on, and which explains why (no participant, an image not assigned, a study not open).
"""
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from study.errors import InvalidResponseTime, UnknownLabel
from study.models import Assignment, Participant, Stimulus, Study, Vote
from study.rawsql import db_json, db_uuid, hot_cursor, on_kept_connection
from study.selectors.participants import participant_cookie_tokens
from study.services.assignments import assignment_lock_for_vote
from study.services.participants import (
    participant_finish,
    participant_gold_verdict,
    participant_may_continue,
    participant_require_can_continue,
)

MAX_RESPONSE_MS = 3_600_000
MAX_LABEL_LENGTH = 64  # characters of a submitted label (the API's input limit)


def vote_clean_label(*, participant: Participant, label: str) -> str:
    """The study's spelling of `label` (matched case-insensitively); UnknownLabel otherwise."""
    return vote_label_in(participant.study.label_set.answers, label)


def vote_label_in(answers: list[str], label: str) -> str:
    """The spelling in `answers` (a label set's answers) of `label`, matched case-insensitively; UnknownLabel
    otherwise."""
    by_key = {name.casefold(): name for name in answers}
    canonical = by_key.get(str(label).strip().casefold())
    if canonical is None:
        raise UnknownLabel(f"Unknown emotion {str(label)[:64]!r}; choose one of: {', '.join(answers)}.")
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


def vote_gold_correct(label: str, ground_truth: str) -> int:
    """1 when a vote on a gold item gives its known answer (case and surrounding spaces ignored), else 0: the one
    rule both vote paths count gold_correct by."""
    return int(label.casefold() == ground_truth.strip().casefold())


@dataclass(frozen=True)
class VoteOutcome:
    """A recorded (or repeated) vote and where its participant stands afterwards."""

    vote: Vote
    participant: Participant
    answered: int
    total: int

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.answered >= self.total


def _record_locked(*, assignment: Assignment, label: str, response_ms: object) -> VoteOutcome:
    """The vote itself through the ORM (the general path), given the participant's assignment already row-locked
    (with participant, study, label set and stimulus loaded)."""
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
        # Votes of one participant on different images take turns from here, so that the count below (a new
        # statement, a new snapshot) sees a concurrent vote's row and the last of them finishes the participant.
        list(Participant.objects.select_for_update().filter(pk=participant.pk).values_list("pk", flat=True))
        # The assignment lock serialises submits of this vote, and answered_at is set in this transaction:
        # no vote can exist yet, so a plain insert (the unique constraint still backs it up).
        vote = Vote.objects.create(participant=participant, stimulus=stimulus, label=label, response_ms=response_ms)
        Assignment.objects.filter(pk=assignment.pk).update(answered_at=vote.created_at)
        if stimulus.is_gold and stimulus.ground_truth:
            correct = vote_gold_correct(label, stimulus.ground_truth)
            Participant.objects.filter(pk=participant.pk).update(
                gold_answered=F("gold_answered") + 1, gold_correct=F("gold_correct") + correct
            )
    counts = Assignment.objects.filter(participant=participant).aggregate(
        total=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False))
    )
    outcome = VoteOutcome(vote=vote, participant=participant, answered=counts["answered"], total=counts["total"])
    if outcome.finished and participant.finished_at is None:
        participant = participant_finish(participant=participant)  # once per participant: scoring, exclusion
        outcome = VoteOutcome(vote=vote, participant=participant, answered=outcome.answered, total=outcome.total)
    return outcome


# --- the hot path: raw SQL ----------------------------------------------------------------------------
# Why raw: profiled under load (bench/RESULTS.md, "Vote path under load and faults"), the ORM spent ≈ 14 ms of
# CPU per JSON vote building, compiling and loading these statements on the reference machine (≈ 5 ms for the
# locking lookup alone) while PostgreSQL answered each in 0.1-0.3 ms; now ≈ 3 ms for the whole request. The statements
# are plain SQL that SQLite and PostgreSQL both run (tests/study/api/test_participant_fast_path.py runs them on
# both); on PostgreSQL they run prepared (study/rawsql.py: planning the lookup cost more than executing it).

# A participant's progress beside one of their assignments, that one left out: how many of the others are answered,
# and the next two unanswered images in their order. Read by the vote's lookup and again by its write on PostgreSQL
# (VOTE_INSERT_ANSWERED_SQL); {participant} and {assignment} are SQL expressions (a column or a placeholder).
PROGRESS_OF_OTHERS_SQL = """(SELECT COUNT(o.answered_at) FROM study_assignment o
         WHERE o.participant_id = {participant} AND o.id <> {assignment}) AS n_answered_others,
       (SELECT n.public_id FROM study_assignment o JOIN study_stimulus n ON n.id = o.stimulus_id
         WHERE o.participant_id = {participant} AND o.answered_at IS NULL AND o.id <> {assignment}
         ORDER BY o.position LIMIT 1) AS upcoming_0,
       (SELECT n.public_id FROM study_assignment o JOIN study_stimulus n ON n.id = o.stimulus_id
         WHERE o.participant_id = {participant} AND o.answered_at IS NULL AND o.id <> {assignment}
         ORDER BY o.position LIMIT 1 OFFSET 1) AS upcoming_1"""

# The participant's assignment of the image, found by the study's slug, the image and the browser's participant
# cookies, with everything the vote needs in the same row: participant and study state, the label set's answers,
# the image's gold answer, the participant's progress and the next two images to show (the current one excluded).
# On PostgreSQL the assignment row is locked (VOTE_LOOKUP_LOCK): concurrent submits of one vote wait for each
# other. The second one then sees this row as answered but the subqueries still read the statement's snapshot,
# so they leave this assignment out: answered = the others' count + 1, the same for a new vote and a repeat.
# {tokens} is a list of %s placeholders, one per cookie token.
VOTE_LOOKUP_SQL = """
SELECT a.id AS assignment_id, a.answered_at IS NOT NULL AS answered,
       p.id AS participant_id, p.study_id, p.token, p.public_id, p.is_test, p.excluded,
       p.finished_at IS NOT NULL AS finished,
       s.status, s.finish_when_paused, s.gold_pass_threshold, ls.labels, ls.non_emotion_labels,
       st.id AS stimulus_id, st.is_gold, st.ground_truth,
       (SELECT COUNT(*) FROM study_assignment o WHERE o.participant_id = a.participant_id) AS n_total,
       """ + PROGRESS_OF_OTHERS_SQL.format(participant="a.participant_id", assignment="a.id") + """
  FROM study_assignment a
  JOIN study_participant p ON p.id = a.participant_id
  JOIN study_study s ON s.id = p.study_id
  JOIN study_labelset ls ON ls.id = s.label_set_id
  JOIN study_stimulus st ON st.id = a.stimulus_id
 WHERE s.slug = %s AND st.public_id = %s AND p.token IN ({tokens})"""
VOTE_LOOKUP_LOCK = " FOR UPDATE OF a"  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers
# The transaction's lookup also locks the participant: two votes of one participant on different images sent at once
# (a scripted client; each holds only its own assignment's lock) then take turns, and the second one's write, a new
# statement whose snapshot sees the first one's vote, counts the participant's progress again
# (VOTE_INSERT_ANSWERED_SQL): the last of them finishes the participant. (The lookup's counts come from its snapshot,
# taken before any lock wait: without this, each counted the other as unanswered and nobody finished them.)
VOTE_LOOKUP_LOCK_PARTICIPANT = " FOR UPDATE OF a, p"

# The vote itself (the assignment lock makes a plain insert safe; the unique constraint still backs it up).
VOTE_INSERT_SQL = """
INSERT INTO study_vote (participant_id, stimulus_id, label, response_ms, created_at)
VALUES (%s, %s, %s, %s, %s) RETURNING id"""

# The assignment answered: progress, the quota's held places and adaptive allocation read answered_at.
ASSIGNMENT_ANSWERED_SQL = "UPDATE study_assignment SET answered_at = %s WHERE id = %s"

# Both in one statement on PostgreSQL (a data-modifying WITH, which SQLite lacks), with the participant's progress and
# next images counted again in this statement's snapshot (see VOTE_LOOKUP_LOCK_PARTICIPANT); the counts leave this
# assignment out, as the lookup's do.
VOTE_INSERT_ANSWERED_SQL = """
WITH answered AS (UPDATE study_assignment SET answered_at = %s WHERE id = %s),
written AS (INSERT INTO study_vote (participant_id, stimulus_id, label, response_ms, created_at)
            VALUES (%s, %s, %s, %s, %s) RETURNING id)
SELECT (SELECT id FROM written),
       """ + PROGRESS_OF_OTHERS_SQL.format(participant="%s", assignment="%s")

# PostgreSQL: the common vote in one statement, in autocommit (no BEGIN, no COMMIT): the locking lookup, and, when the
# vote is a plain new one, the assignment answered and the vote inserted (data-modifying WITHs run whether or not the
# outer SELECT reads them). Plain means: exactly one row found, the cookie the study's own, the label spelt as the
# label set spells it, not answered yet, the participant allowed to go on (participant_may_continue's rule), not a
# gold item and not one of the participant's last two votes (two votes of one participant on different images at once
# would each count the other as unanswered: the transaction locks the participant for those; three or more at once,
# which only a script sends, can still leave the participant unfinished until their done page, which finishes a
# participant whose trials are all answered). Anything else writes nothing and returns the lookup's row with a NULL
# vote id; vote_submit then takes the transaction below, which handles every case (repeats, case-insensitive labels,
# gold scoring, the finish; ≈ 2 votes in 20 are a last two). Two copies of those few rules, kept equal by
# tests/study/api/test_participant_fast_path.py. {lookup} is VOTE_LOOKUP_SQL with its lock, {pairs} the cookies'
# (study id, token) pairs as placeholders.
VOTE_ONE_STATEMENT_SQL = """
WITH found AS ({lookup}),
plain AS (
  SELECT f.assignment_id, f.participant_id, f.stimulus_id FROM found f
   WHERE (SELECT COUNT(*) FROM found) = 1 AND (f.study_id, f.token) IN ({pairs})
     AND (f.labels ? %s OR f.non_emotion_labels ? %s)
     AND NOT f.answered AND NOT f.finished AND NOT f.is_gold AND f.n_answered_others + 2 < f.n_total
     AND (f.is_test OR f.status = %s OR (f.status = %s AND f.finish_when_paused))),
answered AS (UPDATE study_assignment a SET answered_at = %s FROM plain WHERE a.id = plain.assignment_id),
written AS (
  INSERT INTO study_vote (participant_id, stimulus_id, label, response_ms, created_at)
  SELECT plain.participant_id, plain.stimulus_id, %s, %s, %s FROM plain RETURNING id)
SELECT (SELECT id FROM written), found.* FROM found"""

# A gold (attention) item answered: the counters participant_finish scores.
GOLD_ANSWERED_SQL = """
UPDATE study_participant SET gold_answered = gold_answered + 1, gold_correct = gold_correct + %s WHERE id = %s"""

# The participant's last vote finishes them, as participant_finish does through the ORM (≈ 6 statements and a
# savepoint, once every 20 or so votes): finished once, then, with gold items answered, scored and maybe excluded.
PARTICIPANT_FINISH_SQL = """
UPDATE study_participant SET finished_at = %s WHERE id = %s AND finished_at IS NULL
RETURNING gold_answered, gold_correct, excluded"""
PARTICIPANT_GOLD_SCORED_SQL = "UPDATE study_participant SET gold_score = %s WHERE id = %s"
PARTICIPANT_GOLD_EXCLUDED_SQL = """
UPDATE study_participant SET gold_score = %s, excluded = TRUE, exclusion_reason = %s WHERE id = %s"""


@dataclass(frozen=True)
class _VoteLookup:
    """One row of VOTE_LOOKUP_SQL."""

    assignment_id: int
    answered: bool
    participant_id: int
    study_id: int
    token: str
    participant_public_id: uuid.UUID
    is_test: bool
    excluded: bool
    finished: bool
    study_status: str
    finish_when_paused: bool
    gold_pass_threshold: float
    answers: list[str]
    stimulus_id: int
    is_gold: bool
    ground_truth: str
    n_total: int
    n_answered_others: int  # the participant's other answered assignments
    upcoming: tuple[uuid.UUID, ...]

    @classmethod
    def from_row(cls, row: tuple) -> "_VoteLookup":
        (assignment_id, answered, participant_id, study_id, token, public_id, is_test, excluded, finished, status,
         finish_when_paused, gold_pass_threshold, labels, non_emotion_labels, stimulus_id, is_gold, ground_truth,
         n_total, n_answered_others, upcoming_0, upcoming_1) = row
        return cls(assignment_id=assignment_id, answered=bool(answered), participant_id=participant_id,
                   study_id=study_id, token=token, participant_public_id=db_uuid(public_id), is_test=bool(is_test),
                   excluded=bool(excluded), finished=bool(finished), study_status=status,
                   finish_when_paused=bool(finish_when_paused), gold_pass_threshold=gold_pass_threshold,
                   answers=[*db_json(labels), *db_json(non_emotion_labels)],
                   stimulus_id=stimulus_id, is_gold=bool(is_gold), ground_truth=ground_truth, n_total=n_total,
                   n_answered_others=n_answered_others,
                   upcoming=tuple(db_uuid(key) for key in (upcoming_0, upcoming_1) if key is not None))


@dataclass(frozen=True)
class VoteReceipt:
    """A recorded (or repeated) vote, as the participant's answer shows it, and where they stand afterwards."""

    vote_id: int
    participant: uuid.UUID  # public ids
    stimulus: uuid.UUID
    label: str
    response_ms: int
    created_at: datetime
    participant_excluded: bool
    participant_is_test: bool
    answered: int
    total: int
    upcoming: tuple[uuid.UUID, ...]  # the next unanswered images (current, next)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.answered >= self.total


def _vote_lookup(cursor, *, slug: str, tokens: list[str], stimulus_public_id: uuid.UUID) -> _VoteLookup | None:
    sql = VOTE_LOOKUP_SQL.format(tokens=", ".join(["%s"] * len(tokens)))
    if connection.features.has_select_for_update:
        sql += VOTE_LOOKUP_LOCK_PARTICIPANT
    key = Stimulus._meta.get_field("public_id").get_db_prep_value(stimulus_public_id, connection)
    cursor.execute(sql, [slug, key, *tokens])
    rows = cursor.fetchall()
    return _VoteLookup.from_row(rows[0]) if len(rows) == 1 else None


def _vote_insert(cursor, found: _VoteLookup, *, label: str, response_ms: int,
                 now: datetime) -> tuple[int, _VoteLookup]:
    """The vote written; its id, and `found` with the progress counted again after the write on PostgreSQL
    (VOTE_INSERT_ANSWERED_SQL; on SQLite, whose writers take turns from BEGIN, the lookup's counts are current)."""
    stamp = connection.ops.adapt_datetimefield_value(now)
    vote = [found.participant_id, found.stimulus_id, label, response_ms, stamp]
    if connection.vendor == "postgresql":
        cursor.execute(VOTE_INSERT_ANSWERED_SQL, [stamp, found.assignment_id, *vote,
                                                  *[found.participant_id, found.assignment_id] * 3])
        vote_id, n_answered_others, *upcoming = cursor.fetchone()
        found = dataclasses.replace(found, n_answered_others=n_answered_others,
                                    upcoming=tuple(db_uuid(key) for key in upcoming if key is not None))
    else:
        cursor.execute(VOTE_INSERT_SQL, vote)
        vote_id = cursor.fetchone()[0]
        cursor.execute(ASSIGNMENT_ANSWERED_SQL, [stamp, found.assignment_id])
    if found.is_gold and found.ground_truth:
        correct = vote_gold_correct(label, found.ground_truth)
        cursor.execute(GOLD_ANSWERED_SQL, [correct, found.participant_id])
    return vote_id, found


def _participant_finish(cursor, found: _VoteLookup, *, now: datetime) -> bool:
    """participant_finish in raw SQL for the last vote's transaction: whether the participant is now excluded."""
    cursor.execute(PARTICIPANT_FINISH_SQL, [connection.ops.adapt_datetimefield_value(now), found.participant_id])
    row = cursor.fetchone()
    if row is None:  # finished already (a concurrent last vote)
        return found.excluded
    gold_answered, gold_correct, excluded = row
    if gold_answered:
        score, reason = participant_gold_verdict(gold_correct=gold_correct, gold_answered=gold_answered,
                                                 threshold=found.gold_pass_threshold, is_test=found.is_test)
        if reason:
            cursor.execute(PARTICIPANT_GOLD_EXCLUDED_SQL, [score, reason, found.participant_id])
            return True
        cursor.execute(PARTICIPANT_GOLD_SCORED_SQL, [score, found.participant_id])
    return bool(excluded)


def vote_submit(*, slug: str, cookies, stimulus_public_id: uuid.UUID, label: str,
                response_ms: object) -> VoteReceipt | None:
    """The vote path of a browser or a JSON client in as few round trips as possible: on PostgreSQL a plain vote
    is one statement (VOTE_ONE_STATEMENT_SQL); otherwise, and for the rest, a transaction of one locking lookup,
    INSERT, UPDATE (a gold item adds one), and the commit; the last vote of a participant adds the finish (what the
    ORM's participant_finish does: scoring, exclusion; one UPDATE, two with gold items). Same guarantees as vote_record:
    idempotent (a repeat returns the first vote unchanged), labels matched case-insensitively, the study's
    open/paused rules, previews always accepted.

    Returns None when something does not match (unknown study, no participant, an image that is not this
    participant's, a study the participant may not go on with): nothing is written and the caller takes the
    general path (vote_record), which explains why. Raises UnknownLabel / InvalidResponseTime for bad input.
    """
    tokens = list(participant_cookie_tokens(cookies).items())[:20]
    if not tokens:
        return None
    return on_kept_connection(lambda: _vote_submit(slug=slug, tokens=tokens, stimulus_public_id=stimulus_public_id,
                                                   label=label, response_ms=response_ms))


def _vote_submit(*, slug: str, tokens: list[tuple[int, str]], stimulus_public_id: uuid.UUID, label: str,
                 response_ms: object) -> VoteReceipt | None:
    """vote_submit's work: on PostgreSQL the plain vote in one statement, else (and for everything that is not
    plain) the transaction."""
    if connection.vendor == "postgresql":
        receipt = _vote_in_one_statement(slug=slug, tokens=tokens, stimulus_public_id=stimulus_public_id,
                                         label=label, response_ms=response_ms)
        if receipt is not None:
            return receipt
    return _vote_transaction(slug=slug, tokens=tokens, stimulus_public_id=stimulus_public_id, label=label,
                             response_ms=response_ms)


def _vote_in_one_statement(*, slug: str, tokens: list[tuple[int, str]], stimulus_public_id: uuid.UUID, label: str,
                           response_ms: object) -> VoteReceipt | None:
    """VOTE_ONE_STATEMENT_SQL: the receipt of a plain new vote, written; None when the vote is not plain (nothing
    written).

    Why: a vote in a transaction is four round trips (BEGIN, the lookup, the write, COMMIT) and Django's
    transaction handling; one autocommit statement is one round trip (bench/RESULTS.md, "One statement")."""
    try:
        response_ms = vote_clean_response_ms(response_ms)
    except InvalidResponseTime:
        return None  # the transaction raises it where it always did (after the lookup)
    label = str(label).strip()
    lookup = VOTE_LOOKUP_SQL.format(tokens=", ".join(["%s"] * len(tokens))) + VOTE_LOOKUP_LOCK
    sql = VOTE_ONE_STATEMENT_SQL.format(lookup=lookup, pairs=", ".join(["(%s, %s)"] * len(tokens)))
    key = Stimulus._meta.get_field("public_id").get_db_prep_value(stimulus_public_id, connection)
    now = timezone.now()
    params = [slug, key, *(token for _, token in tokens), *(part for pair in tokens for part in pair), label, label,
              Study.Status.LIVE.value, Study.Status.PAUSED.value, now, label, response_ms, now]
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(rows) != 1 or rows[0][0] is None:
        return None
    vote_id, found = rows[0][0], _VoteLookup.from_row(rows[0][1:])
    return VoteReceipt(vote_id=vote_id, participant=found.participant_public_id, stimulus=stimulus_public_id,
                       label=label, response_ms=response_ms, created_at=now, participant_excluded=found.excluded,
                       participant_is_test=found.is_test, answered=found.n_answered_others + 1, total=found.n_total,
                       upcoming=found.upcoming)


def _vote_transaction(*, slug: str, tokens: list[tuple[int, str]], stimulus_public_id: uuid.UUID, label: str,
                      response_ms: object) -> VoteReceipt | None:
    """vote_submit's transaction, for the participant cookies' (study id, token) pairs `tokens`: every case."""
    with transaction.atomic(), hot_cursor() as cursor:
        found = _vote_lookup(cursor, slug=slug, tokens=[token for _, token in tokens],
                             stimulus_public_id=stimulus_public_id)
        if found is None or (found.study_id, found.token) not in tokens:  # the cookie must be the study's own
            return None
        label = vote_label_in(found.answers, label)
        response_ms = vote_clean_response_ms(response_ms)
        if found.answered:  # a repeat (double click, back button, retry): the first vote wins
            first = (Vote.objects.filter(participant_id=found.participant_id, stimulus_id=found.stimulus_id)
                     .values_list("pk", "label", "response_ms", "created_at").first())
            if first is None:
                return None
            vote_id, label, response_ms, created_at = first
        else:
            if not participant_may_continue(is_test=found.is_test, study_status=found.study_status,
                                            finish_when_paused=found.finish_when_paused):
                return None  # vote_record raises StudyNotOpen with the study's message
            created_at = timezone.now()
            vote_id, found = _vote_insert(cursor, found, label=label, response_ms=response_ms, now=created_at)
        answered = found.n_answered_others + 1
        excluded = found.excluded
        if found.n_total > 0 and answered >= found.n_total and not found.finished:
            excluded = _participant_finish(cursor, found, now=timezone.now())
    return VoteReceipt(vote_id=vote_id, participant=found.participant_public_id, stimulus=stimulus_public_id,
                       label=label, response_ms=response_ms, created_at=created_at, participant_excluded=excluded,
                       participant_is_test=found.is_test, answered=answered, total=found.n_total,
                       upcoming=found.upcoming)


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
