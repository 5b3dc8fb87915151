"""Collaborators: a study's owner gives other researchers read-only (viewer) or editor access.

A researcher is named by user name or by email address (either, case-insensitive); an exact user name wins.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from study.errors import InvalidInput, NotFound
from study.models import Study, StudyCollaborator
from study.selectors.researchers import is_researcher

Role = StudyCollaborator.Role


@transaction.atomic
def collaborator_set(*, study: Study, username: str, role: str) -> StudyCollaborator:
    """Add the researcher `username` to `study` with `role`, or change the role they have."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; one of: {', '.join(Role.values)}.")
    user = researcher_find(username)
    if user.pk == study.owner_id:
        raise InvalidInput(f"{user.username} owns this study already.")
    collaborator, _created = StudyCollaborator.objects.update_or_create(
        study=study, user=user, defaults={"role": role})
    return collaborator


def researcher_find(name_or_email: str):
    """The active researcher whose user name, or else whose email address, is `name_or_email`."""
    wanted = (name_or_email or "").strip()
    if not wanted:
        raise InvalidInput("Give the researcher's user name or email address.")
    active = get_user_model().objects.filter(is_active=True)
    by_name = active.filter(username__iexact=wanted).first()
    candidates = [by_name] if by_name else list(active.filter(email__iexact=wanted)[:5]) if "@" in wanted else []
    researchers = [user for user in candidates if is_researcher(user)]
    if len(researchers) > 1:
        raise InvalidInput(f"Several researcher accounts use {wanted}; give the user name instead.")
    if not researchers:
        what = "email address" if "@" in wanted else "user name"
        raise InvalidInput(f"No researcher has the {what} {wanted!r}. Check the spelling, or ask an admin to invite "
                           "them (an invite link, or manage.py add_researcher) and add them once they have joined.")
    return researchers[0]


@transaction.atomic
def collaborator_remove(*, study: Study, collaborator_id: int) -> None:
    deleted, _ = StudyCollaborator.objects.filter(study=study, pk=collaborator_id).delete()
    if not deleted:
        raise NotFound("No such collaborator on this study.")
