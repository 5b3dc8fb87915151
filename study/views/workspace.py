"""Researcher workspace pages that span studies: the jobs list, the first-run progress (JSON for the models
page), and the study page's switch for simulated votes."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from study.models import PredictionJob
from study.selectors.studies import studies_visible_to
from study.services.first_run import first_run_steps
from study.services.simulated import study_set_include_simulated
from study.views.access import researcher_required

JOBS_PER_PAGE = 50


@researcher_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = (PredictionJob.objects.filter(study__in=studies_visible_to(request.user))
            .select_related("study", "model_version").order_by("-created_at"))
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "study/models/job_list.html", {"page": page})


def setup_steps_json(steps) -> list[dict]:
    return [{"key": s.key, "title": s.title, "state": s.state, "state_display": s.get_state_display(),
             "done": s.done, "total": s.total, "percent": s.percent, "message": s.message,
             "finished": s.finished} for s in steps]


@researcher_required
@require_GET
def setup_status(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"steps": setup_steps_json(first_run_steps())})


@researcher_required
@require_POST
def study_simulated_toggle(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(studies_visible_to(request.user), slug=slug)
    include = request.POST.get("include") == "1"
    study_set_include_simulated(study=study, include=include)
    messages.success(request, "Simulated votes now count in the human distributions." if include else
                     "Simulated votes are now left out of the human distributions (they stay in the exports, flagged).")
    target = request.POST.get("next") or ""
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("study:researcher-study-detail", slug=study.slug)
