"""Researcher pages under /studies/: list, create, detail (status, progress, upload), images. Thin views.

Login required; a researcher sees only the studies they own (superusers see all), and any other
study answers 404, never 403, so slugs of other people's studies are not revealed.

The detail page is built to be extended without editing it: other features append template names to
STUDY_DETAIL_PANELS (e.g. `STUDY_DETAIL_PANELS.append("study/models/_predict_panel.html")` in their own
module); the page includes each one, in order and once, with the page's context (`study`, `dashboard`,
`participant_url`, `request`, `user`, ...). Pages that extend study_detail.html can also fill the empty
blocks `model_panel` and `study_links`.
"""
from __future__ import annotations

import csv
from collections import Counter

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFilesSent
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from study.errors import DomainError, InvalidArchive, InvalidInput
from study.exports import neutralise_cell
from study.forms import StimulusUploadForm, StudyCreateForm, StudyStatusForm
from study.models import Stimulus, Study, UploadBatch
from study.selectors.access import EDIT, VIEW
from study.selectors.studies import (
    stimuli_with_vote_counts,
    studies_readable_by,
    study_dashboard,
    study_list_with_progress,
)
from study.services.stimuli import IMPORTED, REJECTED, ImportReport, stimuli_import_uploads
from study.services.studies import study_create, study_set_status
from study.services.study_settings import study_launch_warnings
from study.services.uploads import REPORT_LIMIT, stimulus_upload_enqueue, upload_needs_worker
from study.views.access import researcher_required, study_or_404
from study.views.images import stimulus_file_response

STUDY_DETAIL_PANELS: list[str] = [
    "study/researcher/_simulated_panel.html",  # simulated annotator panel: counts and the one-click switch
    "study/models/_predict_panel.html",  # prediction pipeline: run models, job progress
    "study/researcher/_comparison_panel.html",  # comparison view: link to the human-vs-model page, exports
    "study/researcher/_manage_panel.html",  # preview, edit, clone, delete, collaborators (views/manage.py)
]
REPORT_ROWS_KEPT = 2000
IMAGES_PER_PAGE = 50
REPORT_ROWS_PER_PAGE = 100  # an import's report rows per page
Status = Study.Status

# (label, target status, reopen, style) offered for each current status; the service enforces the rules.
STATUS_ACTIONS = {
    Status.DRAFT: [("Launch", Status.LIVE, False, "primary"), ("Close", Status.CLOSED, False, "danger")],
    Status.LIVE: [("Pause", Status.PAUSED, False, "secondary"), ("Close", Status.CLOSED, False, "danger")],
    Status.PAUSED: [("Resume", Status.LIVE, False, "primary"), ("Close", Status.CLOSED, False, "danger")],
    Status.CLOSED: [("Reopen (paused)", Status.PAUSED, True, "secondary")],
}


# --- helpers -------------------------------------------------------------------------------------


def _owned_study(request: HttpRequest, slug: str, need: str = VIEW) -> Study:
    """The study if the user has the role `need` (owner, editor, viewer; see selectors/access.py), else 404/403."""
    return study_or_404(request, slug, need)


def _report_key(study: Study) -> str:
    return f"emostudy.upload_report.{study.pk}"


def upload_limit_bytes() -> int:
    """The largest upload request accepted: STIMULUS_UPLOAD_MAX_BYTES, else DATA_UPLOAD_MAX_MEMORY_SIZE (20 MB)."""
    limit = getattr(settings, "STIMULUS_UPLOAD_MAX_BYTES", None) or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(limit or 20 * 1024 * 1024)


def extra_panels() -> list[str]:
    """STUDY_DETAIL_PANELS in order, each once (two modules may append the same panel)."""
    return list(dict.fromkeys(STUDY_DETAIL_PANELS))


def _compact(report: ImportReport) -> dict:
    rows = [{"name": r.name, "status": r.status, "reason": r.reason} for r in report.results]
    return {"summary": report.summary(), "manifest": report.manifest_summary(),
            "manifest_used": bool(report.manifest_source), "counts": report.counts(), "rows": rows[:REPORT_ROWS_KEPT],
            "rows_left_out": max(len(rows) - REPORT_ROWS_KEPT, 0)}


def _render_detail(request: HttpRequest, study: Study, *, status: int = 200, upload_form=None,
                   upload_report: dict | None = None, error: str = "") -> HttpResponse:
    participant_url = request.build_absolute_uri(reverse("study:participant-entry", args=[study.slug]))
    context = {
        "study": study,
        "dashboard": study_dashboard(study=study),
        "participant_url": participant_url,
        "status_actions": STATUS_ACTIONS.get(study.status, []),
        "upload_form": upload_form or StimulusUploadForm(),
        "upload_report": upload_report,
        "upload_limit_mb": upload_limit_bytes() // 2**20,
        "error": error,
        "extra_panels": extra_panels(),
    }
    return render(request, "study/researcher/study_detail.html", context, status=status)


# --- pages ---------------------------------------------------------------------------------------


@researcher_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    studies = study_list_with_progress(user=request.user)
    shared = studies_readable_by(request.user).exclude(pk__in=studies.values("pk")).order_by("title")
    return render(request, "study/researcher/study_list.html", {"studies": studies, "shared": shared})


@researcher_required
@require_http_methods(["GET", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = study_create(owner=request.user, **form.cleaned_data)
        except InvalidInput as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Study “{study.title}” created as a draft. Upload images, then launch it.")
            return redirect("study:researcher-study-detail", slug=study.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "study/researcher/study_form.html", {"form": form}, status=status)


@researcher_required
@require_GET
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = _owned_study(request, slug)
    return _render_detail(request, study, upload_report=request.session.pop(_report_key(study), None))


@researcher_required
@require_POST
def study_status(request: HttpRequest, slug: str) -> HttpResponse:
    study = _owned_study(request, slug, EDIT)
    form = StudyStatusForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, study, status=400, error="Unknown status change.")
    try:
        study = study_set_status(study=study, status=form.cleaned_data["status"], reopen=form.cleaned_data["reopen"])
    except DomainError as error:
        return _render_detail(request, study, status=error.status_code, error=error.message)
    messages.success(request, f"The study is now {study.get_status_display().lower()}.")
    if study.status == Study.Status.LIVE:
        for warning in study_launch_warnings(study=study):
            messages.warning(request, warning)
    return redirect("study:researcher-study-detail", slug=study.slug)


@csrf_exempt  # the size is checked before the body is read; CSRF is then checked by _upload (csrf_protect)
@researcher_required
@require_POST
def study_upload(request: HttpRequest, slug: str) -> HttpResponse:
    study = _owned_study(request, slug, EDIT)
    limit = upload_limit_bytes()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        message = (f"The upload is too large ({length / 2**20:.1f} MB; at most {limit // 2**20} MB per upload). "
                   "Split it into several uploads, or use the import_stimuli command for big folders.")
        return _render_detail(request, study, status=413, error=message)
    try:
        return _upload(request, study)
    except TooManyFilesSent:
        return _render_detail(request, study, status=400, error=(
            f"Too many files in one upload (at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}); put them in a zip."))
    except RequestDataTooBig:
        return _render_detail(request, study, status=413, error="The upload's form fields are too large.")
    except SuspiciousOperation as exc:
        return _render_detail(request, study, status=400, error=f"The upload could not be read ({exc}).")


@csrf_protect
def _upload(request: HttpRequest, study: Study) -> HttpResponse:
    form = StimulusUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_detail(request, study, status=400, upload_form=form)
    # too much for one request, or faces to detect (only workers load the detector): a worker imports it
    if upload_needs_worker(study=study, files=form.cleaned_data["files"]):
        try:
            batch = stimulus_upload_enqueue(study=study, files=form.cleaned_data["files"],
                                            manifest=form.cleaned_data["manifest"], user=request.user,
                                            keep_faceless=form.cleaned_data["keep_faceless"])
        except DomainError as error:
            return _render_detail(request, study, status=error.status_code, error=error.message)
        return redirect("study:researcher-upload-batch", slug=study.slug, pk=batch.pk)
    try:
        report = stimuli_import_uploads(study=study, files=form.cleaned_data["files"],
                                        manifest=form.cleaned_data["manifest"])
    except InvalidArchive as error:
        form.add_error("manifest" if form.cleaned_data["manifest"] else None, error.message)
        return _render_detail(request, study, status=400, upload_form=form)
    counts = report.counts()
    if counts[IMPORTED] == 0 and counts[REJECTED] > 0:  # nothing usable: the request failed; say why
        return _render_detail(request, study, status=400, upload_report=_compact(report),
                              error=f"Nothing was imported: {report.summary()}.")
    request.session[_report_key(study)] = _compact(report)
    level = messages.SUCCESS if counts[REJECTED] == 0 else messages.WARNING
    messages.add_message(request, level, f"Upload finished: {report.summary()}. {report.manifest_summary()}")
    return redirect("study:researcher-study-detail", slug=study.slug)


@researcher_required
@require_GET
def study_images(request: HttpRequest, slug: str) -> HttpResponse:
    study = _owned_study(request, slug)
    page = Paginator(stimuli_with_vote_counts(study=study), IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "study/researcher/study_images.html", {"study": study, "page": page})


@researcher_required
@require_GET
def stimulus_image(request: HttpRequest, slug: str, public_id) -> FileResponse:
    """An image of a study the user may see (owner, superuser, or staff allowed to view stimuli in the admin)."""
    stimuli = Stimulus.objects.filter(study__slug=slug, public_id=public_id)
    if not request.user.has_perm("study.view_stimulus"):
        stimuli = stimuli.filter(study__in=studies_readable_by(request.user))
    stimulus = stimuli.first()
    if stimulus is None:
        raise Http404("No such image.")
    return stimulus_file_response(stimulus)


@researcher_required
@require_GET
def upload_batch_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A queued or running import of a big upload: progress (polled), then the report, paged, by result."""
    study = _owned_study(request, slug)
    batch = get_object_or_404(UploadBatch, study=study, pk=pk)
    results = Counter(row[1] for row in batch.report)
    shown = request.GET.get("result", "")
    if shown not in results:
        shown = ""
    rows = sorted((row for row in batch.report if not shown or row[1] == shown),
                  key=lambda row: row[1] != REJECTED)  # what needs the researcher's action first; else file order
    page = Paginator(rows, REPORT_ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "study/researcher/upload_batch.html", {
        "study": study, "batch": batch, "page": page, "shown": shown, "results": sorted(results.items()),
        "report_total": len(batch.report), "left_out": sorted(batch.report_left_out.items()), "report_limit": REPORT_LIMIT})


@researcher_required
@require_GET
def upload_batch_report_csv(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Every row the import's report kept, as CSV (cells neutralised against formula injection, as exports)."""
    study = _owned_study(request, slug)
    batch = get_object_or_404(UploadBatch, study=study, pk=pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-upload-{batch.pk}-report.csv"'
    writer = csv.writer(response)
    writer.writerow(["file", "result", "reason"])
    writer.writerows([neutralise_cell(cell) for cell in row] for row in batch.report)
    return response


@researcher_required
@require_GET
def upload_batch_status(request: HttpRequest, slug: str, pk: int) -> JsonResponse:
    study = _owned_study(request, slug)
    batch = get_object_or_404(UploadBatch, study=study, pk=pk)
    return JsonResponse({
        "id": batch.pk, "state": batch.state, "state_display": batch.get_state_display(),
        "done": batch.done, "total": batch.total,
        "imported": batch.imported, "duplicates": batch.duplicates, "rejected": batch.rejected,
        "face_crop": batch.face_crop, "faces": batch.faces, "faceless": batch.faceless,
        "error": batch.error, "finished": batch.state in (UploadBatch.State.DONE, UploadBatch.State.FAILED),
        "restarts": batch.restarts,
        "report": batch.report[:200], "report_left_out": batch.report_left_out,
    })
