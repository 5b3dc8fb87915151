"""Reads for the demo page and the donation pool."""
from __future__ import annotations

from django.db.models import QuerySet

from study.models import DemoDonation, ModelVersion


def demo_models() -> list[dict]:
    """The valid models shown on /demo/, oldest first, with what they were trained on and their kind."""
    return list(ModelVersion.objects.filter(is_demo=True, status=ModelVersion.Status.VALID)
                .order_by("created_at").values("name", "training_data", "training_domain", "kind"))


def demo_model_versions() -> tuple[list[ModelVersion], list[ModelVersion]]:
    """(the demo page's classifiers, oldest first; its VA regressors, best first: photo-trained, then newest)."""
    valid = ModelVersion.objects.filter(is_demo=True, status=ModelVersion.Status.VALID)
    classifiers = list(valid.filter(kind=ModelVersion.Kind.EXPRESSION).order_by("created_at"))
    va_models = sorted(valid.filter(kind=ModelVersion.Kind.VA).order_by("-created_at"),
                       key=lambda mv: mv.training_domain == "synthetic")  # stable: newest first within a domain
    return classifiers, va_models


def donations_for_review(limit: int = 500) -> QuerySet[DemoDonation]:
    return DemoDonation.objects.prefetch_related("imported_into").order_by("-created_at")[:limit]


def donations_by_ids(ids: list[int]) -> QuerySet[DemoDonation]:
    return DemoDonation.objects.filter(pk__in=ids)


def donation_get(pk: int) -> DemoDonation | None:
    return DemoDonation.objects.filter(pk=pk).first()
