"""A model's training-run figures: the Figure 4 PNG and gallery thumbnails (served to whoever may see the model
or read a study it predicted; selectors/model_figures.py), and the owner's form to attach them.

Anyone else gets 404, so the existence of other people's models is not revealed.
"""
from __future__ import annotations

import zipfile

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from study.errors import DomainError
from study.selectors.model_figures import figure4_item, model_figures_readable
from study.services.model_figures import model_version_attach_figures
from study.views.access import researcher_required

CACHE = "private, max-age=300"


def _readable(request: HttpRequest, pk: int):
    model_version = model_figures_readable(user=request.user, pk=pk)
    if model_version is None:
        raise Http404("no such model")
    return model_version


@researcher_required
@require_GET
def figure4_image(request: HttpRequest, pk: int) -> FileResponse:
    model_version = _readable(request, pk)
    if not model_version.figure4_image:
        raise Http404("this model has no Figure 4 image")
    try:
        handle = model_version.figure4_image.open("rb")
    except OSError:
        raise Http404("the Figure 4 image is missing from storage") from None
    kind = "image/jpeg" if model_version.figure4_image.name.lower().endswith(".jpg") else "image/png"
    response = FileResponse(handle, content_type=kind)
    response["Cache-Control"] = CACHE
    return response


@researcher_required
@require_GET
def figure4_thumbnail(request: HttpRequest, pk: int, n: int) -> HttpResponse:
    model_version = _readable(request, pk)
    item = figure4_item(model_version=model_version, n=n)
    if item is None or not model_version.figure4_gallery:
        raise Http404("no such gallery image")
    try:
        with model_version.figure4_gallery.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            data = archive.read(item["file"])
    except (OSError, KeyError, zipfile.BadZipFile):
        raise Http404("the gallery image is missing from storage") from None
    response = HttpResponse(data, content_type=item.get("content_type") or "image/png")
    response["Cache-Control"] = CACHE
    return response


class ModelFiguresForm(forms.Form):
    lambda_export = forms.FileField(required=False, label="λ export (lambdas.csv)")
    figure4_image = forms.FileField(required=False, label="Figure 4 image (PNG)")
    figure4_gallery = forms.FileField(required=False, label="Figure 4 gallery (zip)")


@researcher_required
@require_POST
def figures_attach(request: HttpRequest, pk: int) -> HttpResponse:
    model_version = _readable(request, pk)
    back = reverse("study:model-detail", args=[pk])
    form = ModelFiguresForm(request.POST, request.FILES)
    form.is_valid()  # every field is optional; the service says what is missing or wrong
    files = {name: form.cleaned_data.get(name) or None for name in ModelFiguresForm.base_fields}
    try:
        model_version_attach_figures(model_version=model_version, by=request.user, **files)
    except DomainError as error:
        return render(request, "study/models/error.html", {"error": error, "back": back}, status=error.status_code)
    attached = ", ".join(form.fields[name].label for name, upload in files.items() if upload)
    messages.success(request, f"Attached to {model_version.name}: {attached}. The comparison view's Uncertainty tab "
                              "shows them for every study the model has predicted.")
    return redirect(back)
