"""Reads for the participant flow, done in SQL. Services write; views and the API call these to show things.

Sections: participant progress · stimulus load (the quota balance) · human vote distributions.
Human distributions leave out excluded participants and gold (attention) items by default.
"""
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from study.analysis.allocation import AllocationPolicy, allocation_order
from study.models import Assignment, Participant, Stimulus, Study, Vote
from study.rawsql import db_json, db_uuid, hot_cursor, on_kept_connection
from study.selectors.votes import counted_votes

# --- participant progress -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantProgress:
    answered: int
    total: int

    @property
    def current(self) -> int:
        """1-based number of the trial being shown ("k of n")."""
        return min(self.answered + 1, self.total)

    @property
    def done(self) -> bool:
        return self.total > 0 and self.answered >= self.total


def participant_cookie_name(study: Study) -> str:
    """One cookie per study, so one browser can take part in several studies."""
    return f"{settings.PARTICIPANT_COOKIE_NAME}_{study.pk}"


def participant_from_cookies(*, study: Study, cookies) -> Participant | None:
    """The participant whose study cookie the browser sends (pages and the API alike), or None."""
    return participant_by_token(study=study, token=cookies.get(participant_cookie_name(study)))


def participant_by_token(*, study: Study, token: str | None) -> Participant | None:
    """The participant of `study` whose cookie holds `token`, or None."""
    if not token:
        return None
    return Participant.objects.filter(study=study, token=token).first()


def participant_cookie_tokens(cookies) -> dict[int, str]:
    """{study id: token} from the browser's participant cookies (one cookie per study)."""
    prefix = f"{settings.PARTICIPANT_COOKIE_NAME}_"
    tokens = {}
    for name, value in cookies.items():
        if name.startswith(prefix) and name[len(prefix):].isdigit() and value:
            tokens[int(name[len(prefix):])] = value
    return tokens


def participant_for_page(*, slug: str, cookies) -> Participant | None:
    """The browser's participant of the study `slug`, with the study and its label set, in one query."""
    tokens = participant_cookie_tokens(cookies)
    if not tokens:
        return None
    found = (Participant.objects.select_related("study__label_set")
             .filter(study__slug=slug, token__in=list(tokens.values())[:20]).order_by()[:1])  # one row at most
    participant = found[0] if found else None
    if participant is None or tokens.get(participant.study_id) != participant.token:
        return None
    return participant


def participant_sequence(*, participant: Participant) -> list[Assignment]:
    """Every assignment of the participant in order, with its image: progress, current and next in one query."""
    return list(participant.assignments.select_related("stimulus").order_by("position"))


def participant_trial_state(*, participant: Participant) -> tuple[ParticipantProgress, list[Assignment]]:
    """Progress and the next unanswered assignments ([current, next], the next preloaded), in one query."""
    sequence = participant_sequence(participant=participant)
    progress = ParticipantProgress(answered=sum(1 for a in sequence if a.answered_at), total=len(sequence))
    return progress, [a for a in sequence if a.answered_at is None][:2]


# Why raw: profiled (bench/RESULTS.md, "Vote path under load and faults"), the JSON trial state cost ≈ 8.5 ms of CPU
# per request through the ORM on the reference machine (two queries built, compiled and loaded into model
# instances) for what PostgreSQL answers in well under 1 ms. One statement: the browser's participant of the study
# (by slug and the participant cookies' tokens; {tokens} is one %s per token), the study's state, the label set,
# the progress counts and the next two unanswered images.
TRIAL_STATE_SQL = """
SELECT p.study_id, p.token, p.is_test, p.label_order, s.status, s.finish_when_paused, ls.labels,
       (SELECT COUNT(*) FROM study_assignment o WHERE o.participant_id = p.id),
       (SELECT COUNT(o.answered_at) FROM study_assignment o WHERE o.participant_id = p.id),
       (SELECT n.public_id FROM study_assignment o JOIN study_stimulus n ON n.id = o.stimulus_id
         WHERE o.participant_id = p.id AND o.answered_at IS NULL ORDER BY o.position LIMIT 1),
       (SELECT n.public_id FROM study_assignment o JOIN study_stimulus n ON n.id = o.stimulus_id
         WHERE o.participant_id = p.id AND o.answered_at IS NULL ORDER BY o.position LIMIT 1 OFFSET 1)
  FROM study_participant p
  JOIN study_study s ON s.id = p.study_id
  JOIN study_labelset ls ON ls.id = s.label_set_id
 WHERE s.slug = %s AND p.token IN ({tokens})"""


@dataclass(frozen=True)
class TrialSnapshot:
    """Where the browser's participant of a study stands: what the JSON trial state shows, and what decides
    whether they may go on (participant_may_continue)."""

    progress: ParticipantProgress
    upcoming: tuple[uuid.UUID, ...]  # the image to show now and the one to preload
    labels: list[str]  # the buttons, in this participant's order
    is_test: bool
    study_status: str
    finish_when_paused: bool


def participant_trial_snapshot(*, slug: str, cookies) -> TrialSnapshot | None:
    """The trial state of the browser's participant of the study `slug` in one raw statement; None when the browser
    has no participant there (or the study does not exist)."""
    tokens = list(participant_cookie_tokens(cookies).items())[:20]
    if not tokens:
        return None
    def read() -> list[tuple]:
        with hot_cursor() as cursor:
            cursor.execute(TRIAL_STATE_SQL.format(tokens=", ".join(["%s"] * len(tokens))),
                           [slug, *(token for _, token in tokens)])
            return cursor.fetchall()

    rows = on_kept_connection(read)
    if len(rows) != 1:
        return None
    (study_id, token, is_test, label_order, status, finish_when_paused, labels, total, answered,
     upcoming_0, upcoming_1) = rows[0]
    if (study_id, token) not in tokens:  # the cookie must be the study's own
        return None
    return TrialSnapshot(
        progress=ParticipantProgress(answered=answered, total=total),
        upcoming=tuple(db_uuid(key) for key in (upcoming_0, upcoming_1) if key is not None),
        labels=db_json(label_order) or db_json(labels), is_test=bool(is_test), study_status=status,
        finish_when_paused=bool(finish_when_paused))


def participant_progress(*, participant: Participant) -> ParticipantProgress:
    counts = participant.assignments.aggregate(
        total=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False))
    )
    return ParticipantProgress(answered=counts["answered"], total=counts["total"])


# --- stimulus load: votes plus assignments still in progress ---------------------------------------


def open_assignment_cutoff(*, now: datetime | None = None) -> datetime:
    """Unanswered assignments served before this moment have expired and no longer hold a slot."""
    return (now or timezone.now()) - timedelta(seconds=settings.ASSIGNMENT_EXPIRY_SECONDS)


def first_vote_cutoff(*, now: datetime | None = None) -> datetime:
    """Unanswered assignments of a participant who has not voted yet, served before this moment, hold no slot."""
    return (now or timezone.now()) - timedelta(seconds=settings.ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS)


def _count_per_stimulus(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT subquery per stimulus (avoids the row blow-up of two joined Counts)."""
    counted = (
        queryset.filter(stimulus=OuterRef("pk")).order_by().values("stimulus").annotate(n=Count("pk")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def held_assignments(*, now: datetime | None = None) -> QuerySet[Assignment]:
    """Unanswered assignments that still hold a place: served within ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS,
    or, once their participant has voted at least once, within ASSIGNMENT_EXPIRY_SECONDS."""
    now = now or timezone.now()
    has_voted = Exists(Assignment.objects.filter(participant=OuterRef("participant"), answered_at__isnull=False))
    return Assignment.objects.filter(
        Q(served_at__gt=first_vote_cutoff(now=now)) | Q(has_voted, served_at__gt=open_assignment_cutoff(now=now)),
        answered_at__isnull=True, participant__excluded=False,
    )


def stimuli_with_load(*, study: Study, now: datetime | None = None) -> QuerySet[Stimulus]:
    """The study's stimuli annotated with n_votes, n_open and load = n_votes + n_open.

    n_votes counts votes of real participants who are not excluded (an excluded participant's image goes
    back into the pool; a simulated panel never takes a slot); n_open counts places held by unanswered
    assignments (held_assignments).
    """
    valid_votes = Vote.objects.filter(participant__excluded=False, participant__is_simulated=False)
    open_assignments = held_assignments(now=now)
    queryset = Stimulus.objects.filter(study=study).annotate(
        n_votes=_count_per_stimulus(valid_votes), n_open=_count_per_stimulus(open_assignments)
    )
    return queryset.annotate(load=F("n_votes") + F("n_open"))


# stimuli_with_load's two counts for a study's regular images in one raw statement, for allocation at Start
# (study.services.assignments): votes of real participants who are not excluded; unanswered assignments of
# participants who are not excluded, served within the hold before a first vote, or within the expiry once their
# participant has voted (held_assignments). Why: building and compiling that queryset cost Start ≈ 6 ms of the web
# server's CPU and PostgreSQL ≈ 2 ms of planning, under the study's lock; this text is prepared once per connection.
# A second copy of those rules, kept equal by tests/study/selectors/test_stimulus_loads.py.
STIMULUS_LOADS_SQL = """
SELECT st.id,
       (SELECT COUNT(*) FROM study_vote v JOIN study_participant p ON p.id = v.participant_id
         WHERE v.stimulus_id = st.id AND NOT p.excluded AND NOT p.is_simulated) AS n_votes,
       (SELECT COUNT(*) FROM study_assignment a JOIN study_participant p ON p.id = a.participant_id
         WHERE a.stimulus_id = st.id AND a.answered_at IS NULL AND NOT p.excluded
           AND (a.served_at > %s
                OR (a.served_at > %s AND EXISTS (SELECT 1 FROM study_assignment o
                                                  WHERE o.participant_id = a.participant_id
                                                    AND o.answered_at IS NOT NULL)))) AS n_open
  FROM study_stimulus st
 WHERE st.study_id = %s AND NOT st.is_gold"""


def stimulus_loads(*, study: Study, now: datetime | None = None) -> list[tuple[int, int, int]]:
    """(image id, n_votes, n_open) for each of the study's regular images, as stimuli_with_load counts them."""
    now = now or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with hot_cursor() as cursor:
        cursor.execute(STIMULUS_LOADS_SQL, [adapt(first_vote_cutoff(now=now)), adapt(open_assignment_cutoff(now=now)),
                                            study.pk])
        return [(pk, votes, held) for pk, votes, held in cursor.fetchall()]


def study_open_slots(*, study: Study, now: datetime | None = None) -> QuerySet[Stimulus]:
    """Regular (non-gold) stimuli still below the study's votes_per_image, counting open assignments
    (fixed allocation; adaptive studies rank with adaptive_open_order)."""
    return stimuli_with_load(study=study, now=now).filter(is_gold=False, load__lt=study.votes_per_image)


def allocation_policy(study: Study) -> AllocationPolicy:
    return AllocationPolicy(min_votes=study.min_votes_per_image, max_votes=study.max_votes_per_image,
                            threshold=study.stability_threshold)


def adaptive_open_order(*, study: Study, now: datetime | None = None,
                        tie_break: Callable[[int], float] | None = None) -> list[int]:
    """Ids of the regular images that still need votes under the study's adaptive policy, least settled
    first (study.analysis.allocation). Two queries: the images with their open assignments, the vote counts."""
    rows = list(stimuli_with_load(study=study, now=now).filter(is_gold=False).values_list("pk", "n_open"))
    if not rows:
        return []
    labels = list(study.label_set.labels)
    column = {label: k for k, label in enumerate(labels)}
    row_of = {pk: i for i, (pk, _) in enumerate(rows)}
    counts = np.zeros((len(rows), len(labels)))
    real_votes = Vote.objects.filter(stimulus__study=study, participant__excluded=False,
                                     participant__is_simulated=False)  # as the quota: simulated never take a slot
    for stimulus_id, label, n in real_votes.order_by().values_list("stimulus_id", "label").annotate(n=Count("pk")):
        if stimulus_id in row_of and label in column:
            counts[row_of[stimulus_id], column[label]] = n
    pending = np.array([n_open for _, n_open in rows], dtype=np.float64)
    ties = None if tie_break is None else np.array([tie_break(pk) for pk, _ in rows])
    order = allocation_order(counts, allocation_policy(study), pending=pending, tie_break=ties)
    return [rows[i][0] for i in order]


def study_waiting_on_holds(*, study: Study, now: datetime | None = None) -> bool:
    """Some regular image still lacks answered votes: a study with no open slot is then only held, not full."""
    return stimuli_with_load(study=study, now=now).filter(is_gold=False, n_votes__lt=study.votes_per_image).exists()


def study_is_full(*, study: Study, now: datetime | None = None) -> bool:
    """True when no regular image needs another vote (also when the study has no images)."""
    if study.allocation == Study.Allocation.ADAPTIVE:
        return not adaptive_open_order(study=study, now=now)
    return not study_open_slots(study=study, now=now).exists()


_FULL_VERDICTS: dict[tuple[int, datetime], tuple[float, bool]] = {}  # (study, its last edit) -> (when, verdict)


def study_is_full_recently(*, study: Study) -> bool:
    """study_is_full as this process computed it within the last STUDY_FULL_CHECK_SECONDS (0: always afresh).

    For the pages a newcomer passes before Start (the study link, consent), which only choose what to show: Start's
    allocation always counts afresh under the study's lock, and says "full" itself if the last places went
    meanwhile. Why: the check costs ≈ 6 ms of the web server's CPU (mostly ORM compilation) and ≈ 2-3 ms of
    PostgreSQL planning, on both pages: when a study link goes out and many people open it at once, each of them
    paid it twice (bench/RESULTS.md, "Joins"). A study edit (its updated_at) starts a new verdict at once.
    """
    max_age = settings.STUDY_FULL_CHECK_SECONDS
    if max_age <= 0:
        return study_is_full(study=study)
    key, now = (study.pk, study.updated_at), time.monotonic()
    cached = _FULL_VERDICTS.get(key)
    if cached is not None and now - cached[0] < max_age:
        return cached[1]
    verdict = study_is_full(study=study)
    if len(_FULL_VERDICTS) > 1000:  # old studies and edits: never more than a small dict
        _FULL_VERDICTS.clear()
    _FULL_VERDICTS[key] = (now, verdict)
    return verdict


# --- human vote distributions ----------------------------------------------------------------------


def stimulus_vote_counts(
    study: Study, include_excluded: bool = False, include_gold: bool = False
) -> dict[int, dict[str, int]]:
    """Votes per stimulus id and answer: {stimulus_id: {label: n}}; answers without votes are absent.

    Non-emotion answers ("Unknown", "Not a face") come back too; callers that build distributions
    keep only study.label_set.labels.

    Only stimuli with at least one counted vote appear. By default excluded participants (failed
    attention checks) and gold items are left out, so these are the human distributions to compare.
    """
    votes = counted_votes(study, include_excluded=include_excluded)
    if not include_gold:
        votes = votes.filter(stimulus__is_gold=False)
    rows = votes.order_by().values_list("stimulus_id", "label").annotate(n=Count("pk"))
    counts: dict[int, dict[str, int]] = {}
    for stimulus_id, label, n in rows:
        counts.setdefault(stimulus_id, {})[label] = n
    return counts


@dataclass(frozen=True)
class StudyProgress:
    images: int
    votes_wanted: int
    votes_counted: int
    participants: int
    finished: int
    excluded: int


def study_progress(*, study: Study) -> StudyProgress:
    """Headline numbers: images, votes wanted vs counted (regular items, valid participants), people."""
    images = Stimulus.objects.filter(study=study, is_gold=False).count()
    votes_counted = counted_votes(study).filter(stimulus__is_gold=False).count()
    people = Participant.objects.filter(study=study, is_test=False).aggregate(  # previews never count
        participants=Count("pk"),
        finished=Count("pk", filter=Q(finished_at__isnull=False)),
        excluded=Count("pk", filter=Q(excluded=True)),
    )
    return StudyProgress(
        images=images,
        votes_wanted=images * study.votes_per_image,
        votes_counted=votes_counted,
        **people,
    )
