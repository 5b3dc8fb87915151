"""Researcher pages for the model registry and prediction jobs (thin: services do the work)."""
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from study.errors import DomainError
from study.models import ModelVersion, PredictionJob, Study
from study.selectors.access import EDIT, VIEW
from study.selectors.label_sets import models_for_label_set
from study.selectors.models import models_runnable_by, models_visible_to
from study.services.first_run import first_run_steps
from study.services.models import model_version_delete, model_version_register, model_version_share
from study.services.predictions import prediction_job_cancel, prediction_job_start
from study.views.access import researcher_required, study_or_404


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=100)
    checkpoint = forms.FileField(help_text="A .pt file written by `python -m ml.train`.")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    lambda_export = forms.FileField(required=False, help_text="Optional lambdas.csv of the training run.")


def _visible_study(request: HttpRequest, slug: str, need: str = VIEW) -> Study:
    """The study if the user has the role `need` on it (the one access rule); 404 when it is not theirs to see."""
    return study_or_404(request, slug, need)


def _visible_job(request: HttpRequest, pk: int, need: str = VIEW) -> PredictionJob:
    job = get_object_or_404(PredictionJob.objects.select_related("study", "model_version"), pk=pk)
    _visible_study(request, job.study.slug, need)
    return job


def _error_page(request, error: DomainError, back: str) -> HttpResponse:
    return render(request, "study/models/error.html", {"error": error, "back": back}, status=error.status_code)


@researcher_required
def model_list(request: HttpRequest) -> HttpResponse:
    form = ModelUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["checkpoint"]
        try:
            model_version = model_version_register(
                name=form.cleaned_data["name"], handle=upload.file, filename=upload.name,
                notes=form.cleaned_data["notes"], lambda_export=(form.cleaned_data["lambda_export"] or None)
                and form.cleaned_data["lambda_export"].file, owner=request.user, user=request.user)
        except DomainError as error:
            form.add_error(None, error.message)
            status = error.status_code  # 503 when the broker is down
        else:
            messages.info(request, f"{model_version.name} stored; a worker is validating it.")
            return redirect("study:model-detail", pk=model_version.pk)
    else:
        status = 400 if request.method == "POST" else 200
    return render(request, "study/models/list.html",
                  {"models": models_visible_to(request.user).order_by("-created_at"), "form": form,
                   "setup_steps": first_run_steps()}, status=status)


def _visible_model(request: HttpRequest, pk: int) -> ModelVersion:
    """A model the researcher may see (own, shared with them, public); any other answers 404."""
    return get_object_or_404(models_visible_to(request.user), pk=pk)


class ModelShareForm(forms.Form):
    usernames = forms.CharField(required=False, label="Share with (usernames, comma-separated)")
    public = forms.BooleanField(required=False, label="Public: every researcher may see and run it")


@researcher_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model_version = _visible_model(request, pk)
    is_owner = model_version.owner_id == request.user.pk
    share_form = ModelShareForm(initial={
        "usernames": ", ".join(u.get_username() for u in model_version.shared_with.order_by("username")),
        "public": model_version.is_public}) if is_owner else None
    return render(request, "study/models/detail.html",
                  {"model": model_version, "is_owner": is_owner, "share_form": share_form})


@researcher_required
@require_POST
def model_share(request: HttpRequest, pk: int) -> HttpResponse:
    model_version = _visible_model(request, pk)
    form = ModelShareForm(request.POST)
    if not form.is_valid():
        return _error_page(request, DomainError("the sharing form is incomplete"), request.path)
    try:
        model_version_share(model_version=model_version, by=request.user, public=form.cleaned_data["public"],
                            usernames=form.cleaned_data["usernames"].split(","))
    except DomainError as error:
        return _error_page(request, error, reverse("study:model-detail", args=[pk]))
    messages.info(request, f"Sharing of {model_version.name} updated.")
    return redirect("study:model-detail", pk=pk)


@researcher_required
@require_GET
def model_status(request: HttpRequest, pk: int) -> JsonResponse:
    model_version = _visible_model(request, pk)
    return JsonResponse({"id": model_version.pk, "name": model_version.name, "status": model_version.status,
                         "error": model_version.validation_error, "classes": model_version.classes})


@researcher_required
@require_POST
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    model_version = _visible_model(request, pk)
    try:
        model_version_delete(model_version=model_version, by=request.user)
    except DomainError as error:
        return _error_page(request, error, reverse("study:model-detail", args=[pk]))
    messages.info(request, f"{model_version.name} removed.")
    return redirect("study:model-list")


@researcher_required
def study_predict(request: HttpRequest, slug: str) -> HttpResponse:
    study = _visible_study(request, slug, EDIT if request.method == "POST" else VIEW)
    if request.method == "POST":
        model_version = models_runnable_by(request.user).filter(pk=request.POST.get("model") or 0).first()
        if model_version is None:
            return _error_page(request, DomainError("choose a registered model"), request.path)
        try:
            job = prediction_job_start(study=study, model_version=model_version,
                                       force=request.POST.get("force") == "on",
                                       allow_missing_labels=request.POST.get("allow_missing") == "on", user=request.user)
        except DomainError as error:
            return _error_page(request, error, request.path)
        return redirect("study:job-detail", pk=job.pk)
    fits = models_for_label_set(label_set=study.label_set, models=models_runnable_by(request.user))
    return render(request, "study/models/predict.html", {
        "study": study, "models": [fit.model for fit in fits if fit.serves],
        "unfit_models": [fit for fit in fits if not fit.serves],
        "jobs": study.prediction_jobs.select_related("model_version")[:20]})


@researcher_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    return render(request, "study/models/job.html", {"job": job, "study": job.study,
                                                      "status_url": reverse("study:job-status", args=[job.pk])})


@researcher_required
@require_GET
def job_status(request: HttpRequest, pk: int) -> JsonResponse:
    job = _visible_job(request, pk)
    return JsonResponse({"id": job.pk, "state": job.state, "done": job.done, "total": job.total,
                         "failed": job.failed, "errors": job.errors[:20],
                         "finished": job.state in ("done", "failed", "cancelled")})


@researcher_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk, EDIT)
    try:
        prediction_job_cancel(job=job)
    except DomainError as error:
        messages.warning(request, error.message)
    return redirect("study:job-detail", pk=job.pk)
