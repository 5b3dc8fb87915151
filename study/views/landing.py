"""The home page: what EmoStudy is and where to go next (the demo study, its comparison view, the API docs)."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from study.models import Prediction, Study
from study.selectors.researchers import is_researcher

DEMO_SLUG = "demo"


def _url_or_none(name: str, *args) -> str | None:
    """Link a page only if it exists (e.g. the live demo page, built in its own module)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    demo = Study.objects.filter(slug=DEMO_SLUG).first()
    context = {
        "demo": demo,
        "demo_open": demo is not None and demo.status == Study.Status.LIVE,
        "demo_participant_url": reverse("study:participant-entry", args=[demo.slug]) if demo else None,
        "demo_compare_url": reverse("study:study-compare", args=[demo.slug]) if demo else None,
        "live_demo_url": _url_or_none("study:demo"),
        "api_docs_url": reverse("study:api-docs"),
        "is_researcher": is_researcher(request.user),
        # the demo study's predictions, not just any valid model (the real-face baseline is valid within seconds,
        # long before the demo model is trained)
        "models_ready": demo is not None and Prediction.objects.filter(stimulus__study=demo).exists(),
    }
    return render(request, "study/landing/home.html", context)
