"""Collaborators: a study's owner gives other researchers read-only (viewer) or editor access."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from study.errors import InvalidInput, NotFound
from study.models import Study, StudyCollaborator

Role = StudyCollaborator.Role


@transaction.atomic
def collaborator_set(*, study: Study, username: str, role: str) -> StudyCollaborator:
    """Add the researcher `username` to `study` with `role`, or change the role they have."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; one of: {', '.join(Role.values)}.")
    username = (username or "").strip()
    user = get_user_model().objects.filter(username__iexact=username, is_active=True).first() if username else None
    if user is None:
        raise InvalidInput(f"No active researcher account named {username!r}.")
    if user.pk == study.owner_id:
        raise InvalidInput(f"{user.username} owns this study already.")
    collaborator, _created = StudyCollaborator.objects.update_or_create(
        study=study, user=user, defaults={"role": role})
    return collaborator


@transaction.atomic
def collaborator_remove(*, study: Study, collaborator_id: int) -> None:
    deleted, _ = StudyCollaborator.objects.filter(study=study, pk=collaborator_id).delete()
    if not deleted:
        raise NotFound("No such collaborator on this study.")
