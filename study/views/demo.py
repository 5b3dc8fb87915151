"""The public demo page: upload (or webcam) -> a Celery task on the gpu queue -> the page polls for JSON.

Thin and torch-free: study.services.demo validates and stores, study.tasks.analyse_demo_upload runs the
models, static/study/demo/demo.js draws boxes and Plotly charts. Every failure is a 4xx/503 JSON with a message.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from study.errors import DomainError, InvalidInput, PayloadTooLarge
from study.models import DemoUpload
from study.selectors.demo import demo_models, donation_get, donations_by_ids, donations_for_review
from study.selectors.studies import studies_visible_to
from study.services import demo as demo_service

FIELD = "photo"


def _error(error: DomainError) -> JsonResponse:
    return JsonResponse({"error": error.message, "code": error.code}, status=error.status_code)


@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    return render(request, "study/demo/demo.html", {
        "models": demo_models(), "consent_text": demo_service.DONATION_CONSENT,
        "max_mb": demo_service.MAX_BYTES // (1024 * 1024), "max_mp": demo_service.MAX_PIXELS // 1_000_000,
        "ttl_minutes": int(demo_service.RESULT_TTL.total_seconds() // 60),
        "per_minute": demo_service.UPLOADS_PER_MINUTE,
    })


def _read_single_photo(request: HttpRequest) -> bytes:
    """The one uploaded file's bytes; every malformed request becomes a DomainError with a message."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > demo_service.MAX_BYTES + 256 * 1024:
        raise PayloadTooLarge(f"the upload is {length / 1e6:.1f} MB; the limit is "
                              f"{demo_service.MAX_BYTES / 1e6:.0f} MB")
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise InvalidInput(f"send the photo as multipart/form-data in a field named {FIELD!r}")
    try:
        files = request.FILES
    except (MultiPartParserError, TooManyFilesSent) as exc:
        raise InvalidInput(f"the upload could not be read ({exc.__class__.__name__})") from None
    except RequestDataTooBig:
        raise PayloadTooLarge("the request is too large") from None
    photos = files.getlist(FIELD)
    others = [name for name in files if name != FIELD]
    if not photos:
        raise InvalidInput(f"no photo: send one image file in the field {FIELD!r}")
    if len(photos) > 1 or others:
        raise InvalidInput("send one photo at a time")
    upload = photos[0]
    if upload.size > demo_service.MAX_BYTES:
        raise PayloadTooLarge(f"the file is {upload.size / 1e6:.1f} MB; the limit is "
                              f"{demo_service.MAX_BYTES / 1e6:.0f} MB")
    try:
        return upload.read()
    finally:
        upload.close()  # a temporary file Django spooled to disk is removed when closed


@require_POST
def demo_upload(request: HttpRequest) -> JsonResponse:
    try:
        data = _read_single_photo(request)
        upload = demo_service.demo_upload_create(
            data=data, client=demo_service.client_key(request.META.get("REMOTE_ADDR", "")),
            donate=request.POST.get("donate") in ("1", "on", "true"),
            whole_image=request.POST.get("whole_image") in ("1", "on", "true"))
    except DomainError as error:
        return _error(error)
    status_url = reverse("study:demo-status", args=[upload.public_id])
    return JsonResponse({"id": str(upload.public_id), "state": upload.state, "status_url": status_url}, status=202)


@require_GET
def demo_status(request: HttpRequest, public_id) -> JsonResponse:
    try:
        upload = demo_service.demo_upload_get(public_id=public_id)
    except DomainError as error:
        return _error(error)
    body = {"id": str(upload.public_id), "state": upload.state}
    if upload.state == DemoUpload.State.DONE:
        body["result"] = upload.result
    elif upload.state == DemoUpload.State.FAILED:
        body["error"] = upload.error
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def donations(request: HttpRequest) -> HttpResponse:
    """Researchers review the "Demo donations" pool and import crops into one of their studies."""
    studies = studies_visible_to(request.user)
    report = None
    if request.method == "POST":
        study = studies.filter(slug=request.POST.get("study", "")).first()
        ids = [int(x) for x in request.POST.getlist("donation") if x.isdigit()]
        if study is None or not ids:
            report = {"error": "choose a study and at least one donated face"}
        else:
            report = demo_service.demo_donations_import(study=study, donations=donations_by_ids(ids))
            report["study"] = study.title
    return render(request, "study/demo/donations.html", {
        "donations": donations_for_review(), "studies": studies,
        "report": report})


@login_required
@require_GET
def donation_image(request: HttpRequest, pk: int) -> HttpResponse:
    donation = donation_get(pk)
    if donation is None:
        raise Http404("no such donation")
    try:
        return FileResponse(donation.image.open("rb"), content_type="image/png")
    except (FileNotFoundError, ValueError):
        raise Http404("the file is missing") from None


