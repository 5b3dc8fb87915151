"""Which registered models a researcher may see and run: their own, those shared with them, public ones."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from study.models import ModelVersion


def models_visible_to(user) -> QuerySet[ModelVersion]:
    """Superusers see every model; anyone else their own, the public ones and those shared with them."""
    models = ModelVersion.objects.select_related("owner")
    if not getattr(user, "is_authenticated", False):
        return models.none()
    if user.is_superuser:
        return models
    shared = ModelVersion.shared_with.through.objects.filter(modelversion_id=OuterRef("pk"), user_id=user.pk)
    return models.filter(Q(owner=user) | Q(is_public=True) | Exists(shared))


def models_runnable_by(user) -> QuerySet[ModelVersion]:
    """The validated classifiers a user may run on a study (VA regressors serve the demo page only)."""
    return models_visible_to(user).filter(status=ModelVersion.Status.VALID, kind=ModelVersion.Kind.EXPRESSION)
