"""Which votes count: the one rule shared by the comparison view, the dashboards, the API and the exports.

A vote counts in the human distributions unless its participant is excluded (failed attention checks) or
is simulated while the study leaves simulated votes out (`Study.include_simulated`). The quota balance
never counts simulated votes: a simulated panel must not take the slots real participants fill.
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from study.models import Vote


def counted_vote_filter(study, *, prefix: str = "", include_excluded: bool = False) -> Q:
    """The Q object selecting counted votes; `prefix` is the path to the vote (e.g. "votes__")."""
    condition = Q()
    if not include_excluded:
        condition &= Q(**{f"{prefix}participant__excluded": False})
    if not study.include_simulated:
        condition &= Q(**{f"{prefix}participant__is_simulated": False})
    return condition


def counted_votes(study, *, include_excluded: bool = False) -> QuerySet[Vote]:
    """The study's votes that count in the human distributions (gold items still included)."""
    return Vote.objects.filter(counted_vote_filter(study, include_excluded=include_excluded), stimulus__study=study)
