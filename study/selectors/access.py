"""Who may do what to a study: the one place every researcher view and API asks.

Roles, weakest first: reader (any researcher, on a study shared read-only with every researcher like
the demo: its comparison view, exports and images only) < viewer (read-only collaborator: also the
study's pages) < editor (collaborator who may change the study) < owner. A superuser counts as an
owner of every study. Only researchers (selectors/researchers.py) have roles. Someone with no role, or
a reader asking for more, does not see the study at all (views answer 404, so slugs of other people's
studies are not revealed); a collaborator who lacks the role an action needs gets AccessDenied (403)
with a message.
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from study.errors import AccessDenied, NotFound
from study.models import Study, StudyCollaborator
from study.selectors.researchers import is_researcher

READ, VIEW, EDIT, OWN = "reader", "viewer", "editor", "owner"
RANK = {READ: 0, VIEW: 1, EDIT: 2, OWN: 3}
_NEEDS = {
    EDIT: "Only the study's owner and its editors may change it; you have read-only access.",
    OWN: "Only the study's owner may do this.",
}


def studies_visible_to(user) -> QuerySet[Study]:
    """A researcher's own studies: owned or collaborated on (superusers: every study)."""
    studies = Study.objects.select_related("label_set", "owner")
    if not is_researcher(user):
        return studies.none()
    if user.is_superuser:
        return studies
    return studies.filter(Q(owner=user) | Q(collaborators__user=user)).distinct()


def studies_readable_by(user) -> QuerySet[Study]:
    """Everything a researcher may read: their own studies plus those shared read-only with every researcher."""
    studies = Study.objects.select_related("label_set", "owner")
    if not is_researcher(user):
        return studies.none()
    if user.is_superuser:
        return studies
    return studies.filter(Q(owner=user) | Q(collaborators__user=user) | Q(readable_by_all_researchers=True)).distinct()


def study_role(*, user, study: Study) -> str | None:
    """'owner' (also for superusers), 'editor', 'viewer', 'reader', or None when the user has no access."""
    if not is_researcher(user):
        return None
    if user.is_superuser or (study.owner_id is not None and study.owner_id == user.pk):
        return OWN
    role = StudyCollaborator.objects.filter(study=study, user=user).values_list("role", flat=True).first()
    if role is None and study.readable_by_all_researchers:
        return READ
    return role


def study_check_access(*, user, study: Study, need: str = VIEW) -> str:
    """The user's role on `study`; NotFound without any role, AccessDenied when the role is too weak."""
    role = study_role(user=user, study=study)
    if role is None or (role == READ and need != READ):
        raise NotFound("No such study.")
    if RANK[role] < RANK[need]:
        raise AccessDenied(_NEEDS[need])
    return role


def study_for_user(*, user, slug: str, need: str = VIEW) -> Study:
    """The study `slug` if `user` has at least the role `need` on it (see study_check_access)."""
    study = Study.objects.select_related("label_set", "owner").filter(slug=slug).first()
    if study is None:
        raise NotFound("No such study.")
    study_check_access(user=user, study=study, need=need)
    return study


def user_can(*, user, study: Study, need: str) -> bool:
    """For templates: show a button only to those who may use it."""
    role = study_role(user=user, study=study)
    return role is not None and RANK[role] >= RANK[need]
