"""Researcher pages that manage a study beyond its dashboard: edit, clone, delete a draft, collaborators,
preview (take the study as a test participant), and label sets. Thin: services enforce every rule.

Access goes through selectors/access.py study_for_user: viewers may look and clone, editors may also
edit and preview, only the owner (or a superuser) may delete a draft or manage collaborators.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from study.errors import DomainError
from study.forms import CollaboratorForm, LabelSetForm, StudyCloneForm, StudyEditForm
from study.models import LabelSet, Study
from study.selectors.access import EDIT, OWN, VIEW
from study.selectors.label_sets import label_set_editable_by, label_set_lock_reason, label_sets_with_models
from study.services.collaborators import collaborator_remove, collaborator_set
from study.services.label_sets import (
    label_set_create,
    label_set_keys,
    label_set_lines,
    label_set_parse_lines,
    label_set_update,
)
from study.services.study_settings import study_clone, study_delete_draft, study_locked_fields, study_update
from study.views.access import researcher_required, study_or_404

PREVIEW_PARAMETER = "preview"


def _study(request: HttpRequest, slug: str, need: str) -> Study:
    return study_or_404(request, slug, need)


def _detail(study: Study) -> HttpResponse:
    return redirect("study:researcher-study-detail", slug=study.slug)


@researcher_required
@require_http_methods(["GET", "POST"])
def study_edit(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(request, slug, EDIT)
    locked = study_locked_fields(study=study)
    form = StudyEditForm(request.POST or None, instance=Study.objects.get(pk=study.pk), locked=locked)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                study = study_update(study=study, changes=form.changes())
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, "Study settings saved.")
                return _detail(study)
        else:
            status = 400
    return render(request, "study/researcher/study_edit.html",
                  {"study": study, "form": form, "locked": locked}, status=status)


@researcher_required
@require_http_methods(["GET", "POST"])
def study_clone_view(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(request, slug, VIEW)
    initial = {"title": f"{study.title} (copy)", "slug": f"{study.slug}-copy"[:64]}
    form = StudyCloneForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                clone = study_clone(study=study, owner=request.user, **form.cleaned_data)
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Cloned as a draft with {clone.stimuli.count()} images and no votes.")
                return _detail(clone)
        else:
            status = 400
    return render(request, "study/researcher/study_clone.html", {"study": study, "form": form}, status=status)


@researcher_required
@require_http_methods(["GET", "POST"])
def study_delete(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(request, slug, OWN)
    error = "" if study.status == Study.Status.DRAFT else (
        "Only a draft can be deleted; close a launched study instead (its data is kept).")
    if request.method == "POST" and not error:
        try:
            study_delete_draft(study=study)
        except DomainError as domain_error:
            error = domain_error.message
        else:
            messages.success(request, f"Draft “{study.title}” deleted.")
            return redirect("study:researcher-study-list")
    return render(request, "study/researcher/study_delete.html", {"study": study, "error": error},
                  status=409 if error and request.method == "POST" else 200)


@researcher_required
@require_http_methods(["GET", "POST"])
def study_collaborators(request: HttpRequest, slug: str) -> HttpResponse:
    """Add (or change the role of) a collaborator, or remove one: owner only. A GET (a reloaded or bookmarked
    address) goes to the study page, where the collaborators form is."""
    study = _study(request, slug, OWN)
    if request.method == "GET":
        return _detail(study)
    try:
        if request.POST.get("remove"):
            collaborator_remove(study=study, collaborator_id=int(request.POST["remove"]))
            messages.success(request, "Collaborator removed.")
        else:
            form = CollaboratorForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Give a user name or email address, and a role.")
                return _detail(study)
            collaborator = collaborator_set(study=study, **form.cleaned_data)
            messages.success(request, f"{collaborator.user.username} is now {collaborator.get_role_display().lower()} "
                                      "on this study.")
    except (DomainError, ValueError) as error:
        messages.error(request, getattr(error, "message", "Unknown collaborator."))
    return _detail(study)


@researcher_required
@require_POST
def study_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """Take the study as a test participant: forget this browser's participant, open the link in preview mode.

    Works in every status (a draft included). The participant made on consent is flagged is_test and
    left out of the data; see participant_consent.
    """
    study = _study(request, slug, EDIT)
    response = redirect(reverse("study:participant-entry", args=[study.slug]) + f"?{PREVIEW_PARAMETER}=1")
    response.delete_cookie(f"{settings.PARTICIPANT_COOKIE_NAME}_{study.pk}")
    return response


@researcher_required
@require_GET
def label_set_list(request: HttpRequest) -> HttpResponse:
    rows = [{"label_set": ls, "models": models, "keys": label_set_keys(ls),
             "editable": label_set_editable_by(label_set=ls, user=request.user)}
            for ls, models in label_sets_with_models()]
    return render(request, "study/researcher/label_sets.html", {"rows": rows})


def _label_set_answers(form: LabelSetForm) -> dict:
    emotions, emotion_keys = label_set_parse_lines(form.cleaned_data["emotions"])
    others, other_keys = label_set_parse_lines(form.cleaned_data["non_emotion"])
    return {"name": form.cleaned_data["name"], "labels": emotions, "non_emotion_labels": others,
            "keys": [*emotion_keys, *other_keys]}


@researcher_required
@require_http_methods(["GET", "POST"])
def label_set_new(request: HttpRequest) -> HttpResponse:
    """A new label set; `?from=<id>` starts from a copy of another (say, one whose answers are locked)."""
    initial = {}
    source = LabelSet.objects.filter(pk=request.GET.get("from")).first() if request.GET.get("from", "").isdigit() else None
    if source is not None:
        emotions, others = label_set_lines(source)
        initial = {"name": f"{source.name} (copy)"[:64], "emotions": emotions, "non_emotion": others}
    form = LabelSetForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                label_set = label_set_create(**_label_set_answers(form), created_by=request.user)
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Label set “{label_set.name}” created; choose it when you create a study.")
                return redirect("study:researcher-label-sets")
        else:
            status = 400
    return render(request, "study/researcher/label_set_form.html", {"form": form}, status=status)


@researcher_required
@require_http_methods(["GET", "POST"])
def label_set_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename, reorder, re-key, mark non-emotion answers; locked answers are said on the page and enforced by
    the service (label_set_update)."""
    label_set = LabelSet.objects.filter(pk=pk).first()
    if label_set is None:
        raise Http404("No such label set.")
    if not label_set_editable_by(label_set=label_set, user=request.user):
        raise PermissionDenied(f"Only the creator of “{label_set.name}” (or an admin) may edit it; "
                               "make a new label set from it instead.")
    emotions, others = label_set_lines(label_set)
    form = LabelSetForm(request.POST or None,
                        initial={"name": label_set.name, "emotions": emotions, "non_emotion": others})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                label_set = label_set_update(label_set=label_set, by=request.user, **_label_set_answers(form))
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Label set “{label_set.name}” saved.")
                return redirect("study:researcher-label-sets")
        else:
            status = 400
    return render(request, "study/researcher/label_set_form.html",
                  {"form": form, "label_set": label_set, "lock_reason": label_set_lock_reason(label_set=label_set)},
                  status=status)
