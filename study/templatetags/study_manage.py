"""{% study_manage study user as manage %}: what the study page's management panel shows to this user."""
from django import template

from study.models import Participant
from study.selectors.access import EDIT, OWN, RANK, study_role
from study.services.study_settings import study_launch_warnings

register = template.Library()


@register.simple_tag
def study_manage(study, user) -> dict:
    role = study_role(user=user, study=study)
    rank = RANK.get(role, 0)
    return {
        "role": role,
        "can_edit": rank >= RANK[EDIT],
        "is_owner": rank >= RANK[OWN],
        "collaborators": list(study.collaborators.select_related("user").order_by("user__username")),
        "warnings": study_launch_warnings(study=study) if study.status in ("draft", "live") else [],
        "test_participants": Participant.objects.filter(study=study, is_test=True).count(),
    }
