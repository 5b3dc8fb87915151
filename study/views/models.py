"""Researcher pages for the model registry and prediction jobs (thin: services do the work)."""
from django import forms
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from study.errors import DomainError, InvalidInput, PayloadTooLarge
from study.models import ModelVersion, PredictionJob, Study
from study.selectors.access import EDIT, VIEW
from study.selectors.label_sets import models_for_label_set, predict_choices
from study.selectors.models import models_runnable_by, models_visible_to
from study.services.first_run import first_run_steps
from study.services.model_uploads import MAX_SIDECAR_BYTES, SidecarFields, model_upload_register
from study.services.models import max_checkpoint_bytes, model_version_delete, model_version_share
from study.services.predictions import prediction_job_cancel, prediction_job_start
from study.views.access import researcher_required, study_or_404

FILE_TYPE_CHOICES = [
    ("auto", "Detect from the file"),
    ("checkpoint", "EmoStudy checkpoint (python -m ml.train or ml.va)"),
    ("torchscript", "TorchScript (.pt written by torch.jit.save)"),
    ("onnx", "ONNX (.onnx)"),
]


def _numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise forms.ValidationError(f"{what}: numbers separated by commas, e.g. 0.5, 0.5, 0.5") from None
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise forms.ValidationError(f"{what}: finite numbers only")
    return values


class ModelUploadForm(forms.Form):
    """Register a model file: an EmoStudy checkpoint describes itself; TorchScript/ONNX need a description
    (ml/foreign.py's sidecar), as an uploaded JSON file or typed into the fields below it."""

    name = forms.CharField(max_length=100)
    checkpoint = forms.FileField(label="Model file", help_text="An EmoStudy checkpoint (.pt from python -m ml.train "
                                 "or ml.va), a TorchScript file (.pt from torch.jit.save) or an ONNX file (.onnx).")
    file_type = forms.ChoiceField(required=False, choices=FILE_TYPE_CHOICES, initial="auto", label="File type")
    sidecar = forms.FileField(required=False, label="Description JSON (sidecar)",
                              help_text="TorchScript/ONNX only. If given, the description fields below are ignored.")
    outputs = forms.ChoiceField(required=False, label="Outputs", initial="logits", choices=[
        ("logits", "class logits (softmax is applied)"), ("probabilities", "class probabilities"),
        ("valence_arousal", "valence and arousal (2 values in [-1, 1]): a VA regressor")])
    classes = forms.CharField(required=False, label="Class names in output order",
                              help_text="Comma-separated, e.g. Anger, Disgust, Fear, Happiness, Sadness, Surprise, "
                                        "Neutral. Not needed for a VA regressor.",
                              widget=forms.TextInput(attrs={"size": 60}))
    input_size = forms.IntegerField(required=False, min_value=8, max_value=4096, label="Input size (pixels)",
                                    help_text="The side of the square image the model takes.")
    channels = forms.ChoiceField(required=False, choices=[("rgb", "RGB"), ("grayscale", "Grayscale")], initial="rgb")
    mean = forms.CharField(required=False, label="Normalisation mean",
                           help_text="On pixels scaled to [0, 1]: one value, or one per channel (default 0).")
    std = forms.CharField(required=False, label="Normalisation std", help_text="Likewise (default 1).")
    training_data = forms.CharField(required=False, max_length=200, label="Training data",
                                    help_text="Shown beside every prediction, e.g. RAF-DB (photographs).")
    training_domain = forms.ChoiceField(required=False, label="Trained on", choices=[
        ("", "not stated"), ("photo", "real photographs"), ("synthetic", "synthetic faces")])
    licence = forms.CharField(required=False, max_length=200, label="Licence")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    lambda_export = forms.FileField(required=False, help_text="Optional lambdas.csv of the training run.")
    public = forms.BooleanField(required=False, label="Public: every researcher may see and run it")
    share_with = forms.CharField(required=False, label="Share with (usernames, comma-separated)")

    GROUPS = {"file": ("name", "checkpoint", "file_type"),
              "description": ("sidecar", "outputs", "classes", "input_size", "channels", "mean", "std"),
              "provenance": ("training_data", "training_domain", "licence", "notes", "lambda_export", "public",
                             "share_with")}

    def group(self, key: str) -> list:
        """The bound fields of one fieldset of the page, in order."""
        return [self[name] for name in self.GROUPS[key]]

    def file_fields(self):
        return self.group("file")

    def description_fields(self):
        return self.group("description")

    def provenance_fields(self):
        return self.group("provenance")

    def clean(self):
        data = super().clean()
        for name, default in (("file_type", "auto"), ("outputs", "logits"), ("channels", "rgb")):
            data[name] = data.get(name) or default  # a script may leave the choices out
        return data

    def clean_classes(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data["classes"].split(",") if c.strip()]

    def clean_mean(self) -> list[float]:
        return _numbers(self.cleaned_data["mean"], "mean")

    def clean_std(self) -> list[float]:
        values = _numbers(self.cleaned_data["std"], "std")
        if any(v <= 0 for v in values):
            raise forms.ValidationError("std: positive numbers only")
        return values

    def sidecar_fields(self) -> SidecarFields:
        data = self.cleaned_data
        return SidecarFields(classes=data["classes"], input_size=data["input_size"], channels=data["channels"],
                             mean=data["mean"] or None, std=data["std"] or None, outputs=data["outputs"],
                             training_data=data["training_data"], training_domain=data["training_domain"],
                             licence=data["licence"])


def _visible_study(request: HttpRequest, slug: str, need: str = VIEW) -> Study:
    """The study if the user has the role `need` on it (the one access rule); 404 when it is not theirs to see."""
    return study_or_404(request, slug, need)


def _visible_job(request: HttpRequest, pk: int, need: str = VIEW) -> PredictionJob:
    job = get_object_or_404(PredictionJob.objects.select_related("study", "model_version"), pk=pk)
    _visible_study(request, job.study.slug, need)
    return job


def _error_page(request, error: DomainError, back: str) -> HttpResponse:
    return render(request, "study/models/error.html", {"error": error, "back": back}, status=error.status_code)


def _upload_too_large(request: HttpRequest) -> PayloadTooLarge | None:
    """Refuse an oversized upload from its Content-Length, before Django reads (and spools) the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = max_checkpoint_bytes()
    if length > limit + 1024 * 1024:  # the form's other fields and a sidecar fit in 1 MB
        return PayloadTooLarge(f"the upload is {length / 1e6:.0f} MB; a model file may be at most "
                               f"{limit / 1e6:.0f} MB")
    return None


def _register_upload(request: HttpRequest, form: ModelUploadForm) -> ModelVersion:
    data = form.cleaned_data
    upload, sidecar, lambdas = data["checkpoint"], data["sidecar"], data["lambda_export"]
    sidecar_json = None  # the service checks the model file's size (413) before storing anything
    if sidecar is not None:
        if sidecar.size > MAX_SIDECAR_BYTES:
            raise InvalidInput(f"the description (sidecar) file is over {MAX_SIDECAR_BYTES // 1000} kB")
        sidecar_json = sidecar.read()
    return model_upload_register(
        name=data["name"], handle=upload.file, filename=upload.name, owner=request.user,
        file_type=data["file_type"], sidecar_json=sidecar_json, fields=form.sidecar_fields(), notes=data["notes"],
        lambda_export=lambdas.file if lambdas else None, is_public=data["public"],
        share_with=data["share_with"].split(","))


@researcher_required
def model_list(request: HttpRequest) -> HttpResponse:
    """The registry and its upload form. Django removes spooled upload files when the request ends, and a
    refused upload stores nothing, so a refusal leaves nothing on disk."""
    form, status, refusal = ModelUploadForm(), 200, ""
    if request.method == "POST":
        try:
            return _post_upload(request)
        except _Refused as refused:
            form, status, refusal = refused.form or form, refused.status, refused.message
    return render(request, "study/models/list.html",
                  {"models": models_visible_to(request.user).order_by("-created_at"), "form": form,
                   "refusal": refusal, "setup_steps": first_run_steps()}, status=status)


class _Refused(Exception):
    def __init__(self, status: int, message: str = "", form: ModelUploadForm | None = None):
        super().__init__(message)
        self.status, self.message, self.form = status, message, form


def _post_upload(request: HttpRequest) -> HttpResponse:
    """The redirect to the new model's page; _Refused (the 4xx/503 status and why) otherwise."""
    if (too_large := _upload_too_large(request)) is not None:
        raise _Refused(too_large.status_code, too_large.message)
    try:
        form = ModelUploadForm(request.POST, request.FILES)
    except (MultiPartParserError, TooManyFilesSent, RequestDataTooBig) as exc:
        raise _Refused(413 if isinstance(exc, RequestDataTooBig) else 400,
                       f"the upload could not be read ({exc.__class__.__name__})") from None
    if not form.is_valid():
        raise _Refused(400, form=form)
    try:
        model_version = _register_upload(request, form)
    except DomainError as error:
        raise _Refused(error.status_code, error.message, form) from None  # 413 too large, 503 broker down
    messages.info(request, f"{model_version.name} stored; a worker is validating it.")
    return redirect("study:model-detail", pk=model_version.pk)


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
                  {"model": model_version, "is_owner": is_owner, "share_form": share_form,
                   "stage": _stage(model_version)})


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
                         "stage": _stage(model_version), "kind": model_version.kind,
                         "error": model_version.validation_error, "classes": model_version.classes})


def _stage(model_version: ModelVersion) -> str:
    """Where validation is: queued (stored, waiting for a worker), validating (a worker is loading and
    test-running it), then valid or invalid."""
    if model_version.status != ModelVersion.Status.PENDING:
        return model_version.status
    return "validating" if model_version.validation_started_at else "queued"


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
        "study": study, **predict_choices(fits),
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
