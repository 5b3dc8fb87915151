"""Assignments: which images a participant sees, in which order, balanced across participants.

Design: a participant's whole sequence is allocated at once, when they press "Start" after the
instructions. That makes reloads and the back button trivial (the sequence is fixed; the page always
shows the first unanswered item) and lets the page preload the next image. The cost is that an
abandoned sequence holds its slots until it expires; after that its images count as free again, and a late
answer is still accepted. Until the participant's first vote a sequence holds its places only briefly
(ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS); after it, ASSIGNMENT_EXPIRY_SECONDS from being served.

Balance: an image's load is its valid votes plus its unexpired open assignments (computed in SQL by
study.selectors.participants.stimuli_with_load; at Start by its raw twin stimulus_loads). A participant gets the
regular images with the lowest load, ties broken by a deterministic hash of (study seed, participant id,
stimulus id). Images whose load already reaches votes_per_image are never served. Taking the lowest-load images
one participant at a time keeps every image's load within one of every other's.

Adaptive allocation (study.allocation == "adaptive"): instead of the lowest load, the participant gets
the images that study.analysis.allocation ranks least settled -- below the minimum votes first (fewest
first, so still balanced), then by the expected gain in stability of the next vote, counting open
assignments as votes to come; settled images and images at the maximum are not served. The study is
full when every image is settled. Same lock, same single bulk insert.

Concurrency: the read-then-insert must not interleave between participants of one study, or two of
them could both take the same "lowest" images. So allocation locks the study row
(SELECT ... FOR NO KEY UPDATE on PostgreSQL) before reading the loads: allocations of one study run
one after another, each seeing the assignments committed by the one before (READ COMMITTED takes a
new snapshot per statement, after the lock is granted). NO KEY UPDATE does not block inserts that
merely reference the study (new participants, votes). SKIP LOCKED on stimulus rows was rejected: it
spreads participants over different rows but does not make the counts each one reads consistent,
so balance could drift. On SQLite the settings open every transaction with BEGIN IMMEDIATE, which
takes the database write lock up front: the same serialisation, coarser. Allocation is one aggregate
query and one bulk insert per participant, so the lock is held briefly.
"""
import hashlib
import random

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from study.errors import NotAssigned, StudyFull
from study.models import Assignment, Participant, Stimulus, Study
from study.selectors.participants import (
    adaptive_open_order,
    stimulus_loads,
    study_waiting_on_holds,
)
from study.services.participants import participant_require_can_continue

FULL_MESSAGE = _("This study has all the responses it needs for now. Thank you for your interest.")
HELD_MESSAGE = _("Every remaining place is held by someone taking part right now. Places that are not answered "
                 "free up within minutes: please try again a little later.")


def _tie_key(seed: int, participant_id: int, stimulus_id: int) -> bytes:
    return hashlib.sha256(f"{seed}:{participant_id}:{stimulus_id}".encode()).digest()


def gold_trial_count(*, study: Study, gold_available: int) -> int:
    """How many of a participant's images_per_participant trials are gold (attention) items.

    round(gold_rate * images_per_participant), at least one when the rate is positive and gold items
    exist, never more than the gold items available, and always leaving one regular trial.
    """
    if study.gold_rate <= 0 or gold_available == 0:
        return 0
    wanted = max(1, round(study.gold_rate * study.images_per_participant))
    return max(0, min(wanted, gold_available, study.images_per_participant - 1))


@transaction.atomic
def assignment_allocate(*, participant: Participant) -> list[Assignment]:
    """Allocate the participant's whole sequence (regular images plus gold items). Idempotent.

    Raises StudyNotOpen unless the participant may go on (participant_require_can_continue), StudyFull when
    no regular image needs votes (never for a test participant, who takes no quota).
    Returns the sequence in position order (the existing one if already allocated).
    """
    study = Study.objects.select_for_update(no_key=True).get(pk=participant.study_id)
    existing = list(participant.assignments.select_related("stimulus").order_by("position"))
    if existing:
        return existing
    participant_require_can_continue(participant, study)

    gold_ids = sorted(
        Stimulus.objects.filter(study=study, is_gold=True).exclude(ground_truth="").values_list("pk", flat=True)
    )
    n_gold = gold_trial_count(study=study, gold_available=len(gold_ids))
    wanted = study.images_per_participant - n_gold
    if study.allocation == Study.Allocation.ADAPTIVE and not participant.is_test:
        def tie(stimulus_id: int) -> float:
            return int.from_bytes(_tie_key(study.random_seed, participant.pk, stimulus_id)[:6], "big")

        sequence = adaptive_open_order(study=study, tie_break=tie)[:wanted]
    else:
        # Each image's load counted once, in one prepared statement (filtering on it in SQL, as study_open_slots
        # does, made PostgreSQL run both count subqueries again for the WHERE, under the study's lock).
        # A test participant (a researcher's preview) takes no quota: it may see any regular image, even when full.
        slots = [(pk, votes + held) for pk, votes, held in stimulus_loads(study=study)
                 if participant.is_test or votes + held < study.votes_per_image]
        ranked = sorted(slots, key=lambda row: (row[1], _tie_key(study.random_seed, participant.pk, row[0])))
        sequence = [pk for pk, _load in ranked[:wanted]]
    if not sequence:
        # Held places are counted apart from answered ones: a study waiting on holds is not full.
        raise StudyFull(str(HELD_MESSAGE if study_waiting_on_holds(study=study) else FULL_MESSAGE))

    rng = random.Random(_tie_key(study.random_seed, participant.pk, 0))
    rng.shuffle(sequence)  # no order effects shared between participants
    gold = rng.sample(gold_ids, n_gold)
    for position, stimulus_id in zip(sorted(rng.sample(range(len(sequence) + n_gold), n_gold)), gold, strict=False):
        sequence.insert(position, stimulus_id)  # ascending inserts land exactly at `position`

    Assignment.objects.bulk_create(
        Assignment(participant=participant, stimulus_id=stimulus_id, position=position)
        for position, stimulus_id in enumerate(sequence)
    )
    return list(participant.assignments.select_related("stimulus").order_by("position"))


def assignment_lock_for_vote(*, participant: Participant, stimulus: Stimulus) -> Assignment:
    """The participant's assignment of `stimulus`, row-locked for the vote; NotAssigned if none.

    Must run inside the caller's transaction: the lock makes concurrent submits of the same vote
    (double clicks) wait for each other instead of racing.
    """
    try:
        return Assignment.objects.select_for_update().get(participant=participant, stimulus=stimulus)
    except Assignment.DoesNotExist:
        raise NotAssigned(str(_("This image is not one of your trials."))) from None
