"""Simulated participants: an annotator panel's vote counts (the synthetic faces' `votes_<Class>`) stored as
the votes of flagged participants, so a demo's comparison view is full from the first minute.

Simulated participants never take part in the quota balance (study.selectors counts only real votes toward
`votes_per_image`), carry `is_simulated=True` everywhere (pages, exports) and can be left out of the human
distributions with one switch on the study (`Study.include_simulated`). Real votes add to theirs.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from study.errors import InvalidInput
from study.models import Participant, Stimulus, Study, Vote

SIMULATED_USER_AGENT = "simulated"


@transaction.atomic
def simulated_panel_load(*, study: Study, counts: Mapping[int, Sequence[int]], panel: str, seed: int = 0) -> int:
    """Store a panel's votes: `counts` maps a stimulus id to its vote counts in the study's label order.

    Panel member j votes once per image (the j-th of that image's shuffled votes), so the panel has as
    many simulated participants as the largest per-image count. Simulated votes have no response time
    (response_ms = 0). Idempotent per panel name: a panel already loaded is left as it is. Returns the
    number of votes stored.
    """
    labels = list(study.label_set.labels)
    if Participant.objects.filter(study=study, is_simulated=True, external_ids__simulated_panel=panel).exists():
        return 0
    known = set(Stimulus.objects.filter(study=study, pk__in=list(counts)).values_list("pk", flat=True))
    unknown = set(counts) - known
    if unknown:
        raise InvalidInput(f"{len(unknown)} image(s) of the panel are not in study {study.slug!r}")
    rng = np.random.default_rng(seed)
    per_stimulus: dict[int, list[str]] = {}
    for stimulus_id, row in counts.items():
        row = [int(n) for n in row]
        if len(row) != len(labels) or min(row, default=0) < 0:
            raise InvalidInput(f"the panel needs {len(labels)} non-negative counts per image ({', '.join(labels)})")
        ballots = [label for label, n in zip(labels, row, strict=True) for _ in range(n)]
        per_stimulus[stimulus_id] = [ballots[i] for i in rng.permutation(len(ballots))]
    size = max((len(ballots) for ballots in per_stimulus.values()), default=0)
    now = timezone.now()
    members = Participant.objects.bulk_create([
        Participant(study=study, token=f"sim-{secrets.token_urlsafe(24)}", is_simulated=True,
                    external_ids={"simulated_panel": panel, "annotator": str(j + 1)},
                    user_agent_family=SIMULATED_USER_AGENT, label_order=labels, consented_at=now, finished_at=now)
        for j in range(size)])
    if members and members[0].pk is None:  # backends that do not return primary keys from bulk_create
        members = list(Participant.objects.filter(study=study, is_simulated=True,
                                                  external_ids__simulated_panel=panel).order_by("pk"))
    votes = [Vote(participant=members[j], stimulus_id=stimulus_id, label=label, response_ms=0)
             for stimulus_id, ballots in per_stimulus.items() for j, label in enumerate(ballots)]
    Vote.objects.bulk_create(votes, batch_size=2000)
    return len(votes)


def study_set_include_simulated(*, study: Study, include: bool) -> Study:
    """The one-click switch: count simulated votes in the human distributions, or leave them out."""
    if study.include_simulated != include:
        study.include_simulated = include
        study.save(update_fields=["include_simulated", "updated_at"])
    return study
