"""Reads for the demo page and the donation pool."""
from __future__ import annotations

from django.db.models import QuerySet

from study.models import DemoDonation, ModelVersion


def demo_models() -> list[dict]:
    """The valid models shown on /demo/, oldest first, with what they were trained on."""
    return list(ModelVersion.objects.filter(is_demo=True, status=ModelVersion.Status.VALID)
                .order_by("created_at").values("name", "training_data", "training_domain"))


def donations_for_review(limit: int = 500) -> QuerySet[DemoDonation]:
    return DemoDonation.objects.prefetch_related("imported_into").order_by("-created_at")[:limit]


def donations_by_ids(ids: list[int]) -> QuerySet[DemoDonation]:
    return DemoDonation.objects.filter(pk__in=ids)


def donation_get(pk: int) -> DemoDonation | None:
    return DemoDonation.objects.filter(pk=pk).first()
