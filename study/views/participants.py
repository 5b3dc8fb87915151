"""The participants page: who agrees with the crowd and the models, Dawid-Skene skill, response times,
sortable, with one-click exclusion that keeps the votes (excluded voters leave the human distributions)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from study.selectors.participant_quality import participant_quality
from study.selectors.studies import studies_visible_to
from study.services.studies import participants_set_excluded

SORTS = {
    "started": lambda row: row["participant"].started_at,
    "votes": lambda row: row["n_votes"],
    "loo": lambda row: row["loo"],
    "skill": lambda row: row["skill"],
    "gold": lambda row: row["gold_score"],
    "rt": lambda row: row["rt"].get("median"),
    "fast": lambda row: row["rt"].get("fast_share"),
}


def _study(request: HttpRequest, slug: str):
    return get_object_or_404(studies_visible_to(request.user).select_related("label_set"), slug=slug)


def _sorted(rows: list[dict], key: str, descending: bool, models: list[str]) -> list[dict]:
    if key.startswith("model:") and key[6:] in models:
        name = key[6:]

        def get(row):
            return row["models"].get(name, {}).get("probability")
    else:
        get = SORTS.get(key, SORTS["loo"])
    present = [row for row in rows if get(row) is not None]
    missing = [row for row in rows if get(row) is None]  # always last, whichever direction
    return sorted(present, key=get, reverse=descending) + missing


@login_required
@require_GET
def participant_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(request, slug)
    quality = participant_quality(study=study)
    sort = request.GET.get("sort") or "loo"
    descending = request.GET.get("dir") == "desc"
    rows = _sorted(quality["rows"], sort, descending, quality["models"])
    for row in rows:
        row["model_values"] = [row["models"].get(name, {}).get("probability") for name in quality["models"]]
        row["confusion_rows"] = list(zip(quality["labels"], row["confusion"] or [], strict=False))
    return render(request, "study/researcher/participants.html", {
        "study": study, "rows": rows, "labels": quality["labels"], "models": quality["models"], "sort": sort,
        "descending": descending,
    })


@login_required
@require_POST
def participant_exclusion(request: HttpRequest, slug: str, public_id) -> HttpResponse:
    study = _study(request, slug)
    participants = study.participants.filter(public_id=public_id)
    get_object_or_404(participants)
    exclude = request.POST.get("excluded") == "1"
    participants_set_excluded(participants=participants, excluded=exclude,
                              reason=request.POST.get("reason", "") if exclude else "")
    return redirect(reverse("study:researcher-participants", args=[study.slug]) + "?" + request.GET.urlencode())
