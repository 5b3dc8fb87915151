"""Upload existing annotations (FER+, RAF-DB, CIFAR-10H-style CSVs) as a named source of a study: the
form's twin of `manage.py import_votes`. The study page shows the form (a STUDY_DETAIL_PANELS panel)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from study.errors import DomainError
from study.forms import VoteImportForm
from study.selectors.studies import studies_visible_to
from study.services.vote_imports import MAX_BYTES, votes_import
from study.views.researcher import STUDY_DETAIL_PANELS

PANEL = "study/researcher/_vote_import_panel.html"
if PANEL not in STUDY_DETAIL_PANELS:
    STUDY_DETAIL_PANELS.append(PANEL)


@login_required
@require_POST
def study_import_votes(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(studies_visible_to(request.user).select_related("label_set"), slug=slug)
    form = VoteImportForm(request.POST, request.FILES)
    context = {"study": study, "form": form, "report": None, "error": ""}
    if not form.is_valid():
        context["error"] = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return render(request, "study/researcher/vote_import_result.html", context, status=400)
    upload = form.cleaned_data["file"]
    if upload.size > MAX_BYTES:
        context["error"] = f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; use manage.py import_votes."
        return render(request, "study/researcher/vote_import_result.html", context, status=400)
    try:
        report = votes_import(study=study, source_name=form.cleaned_data["source"], data=upload.read())
    except DomainError as error:
        context["error"] = error.message
        return render(request, "study/researcher/vote_import_result.html", context, status=400)
    context["report"] = report
    return render(request, "study/researcher/vote_import_result.html", context)
