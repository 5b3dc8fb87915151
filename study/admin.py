"""Django admin for every study model: list views with counts, filters and search, and no N+1 queries.

Counts are annotated in get_queryset (one query per page, however many rows). Data that participants or
workers produce (participants, assignments, votes, predictions, jobs) is read-only here; images and
checkpoints are added through their own pages and commands, which validate and hash them.
"""
from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from study.errors import DomainError
from study.models import (
    Assignment,
    LabelSet,
    ModelVersion,
    Participant,
    Prediction,
    PredictionJob,
    Stimulus,
    Study,
    StudyCollaborator,
    Vote,
)
from study.selectors.studies import count_subquery
from study.services.studies import participants_set_excluded, study_set_status


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows written by the application itself: viewable and deletable, never hand-edited or added."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class IdInputFilter(admin.SimpleListFilter):
    """A text box instead of a list of choices, for filters over many rows (a stimulus, a participant)."""

    template = "study/researcher/admin_input_filter.html"
    placeholder = ""
    text_lookup = ""  # the lookup a non-numeric value filters on; a number is always the row id
    parse_text = staticmethod(str)  # raising ValueError means "matches nothing"

    def lookups(self, request, model_admin):
        return [("", "")]  # one dummy choice so the filter is shown; the template draws an input

    def choices(self, changelist):
        hidden = [(k, v) for k, v in changelist.get_filters_params().items() if k != self.parameter_name]
        yield {"value": self.value() or "", "hidden": hidden, "parameter_name": self.parameter_name,
               "placeholder": self.placeholder, "clear_url": changelist.get_query_string(remove=[self.parameter_name])}

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.isdigit():
            return queryset.filter(**{f"{self.parameter_name}_id": int(value)})
        try:
            return queryset.filter(**{self.text_lookup: self.parse_text(value)})
        except ValueError:
            return queryset.none()


class StimulusIdFilter(IdInputFilter):
    title = parameter_name = "stimulus"
    placeholder = "id or file name"
    text_lookup = "stimulus__original_name"


class ParticipantIdFilter(IdInputFilter):
    title = parameter_name = "participant"
    placeholder = "id or public id"
    text_lookup = "participant__public_id"
    parse_text = staticmethod(uuid.UUID)


def _votes_link(count: int, parameter: str, pk: int):
    url = reverse("admin:study_vote_changelist") + f"?{parameter}={pk}"
    return format_html('<a href="{}">{}</a>', url, count)


# --- studies and label sets ------------------------------------------------------------------------


@admin.register(LabelSet)
class LabelSetAdmin(admin.ModelAdmin):
    list_display = ["name", "label_list", "n_studies"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_studies=Count("studies"))

    @admin.display(description="labels")
    def label_list(self, obj):
        return ", ".join(obj.labels or [])

    @admin.display(description="studies", ordering="n_studies")
    def n_studies(self, obj):
        return obj.n_studies


class StudyCollaboratorInline(admin.TabularInline):
    model = StudyCollaborator
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    inlines = [StudyCollaboratorInline]
    list_display = ["title", "slug", "status", "owner", "label_set", "n_images", "n_gold", "n_participants",
                    "votes_per_image", "created_at", "dashboard"]
    list_filter = ["status", "label_set", "owner"]
    list_select_related = ["owner", "label_set"]
    search_fields = ["title", "slug", "owner__username"]
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ["created_at", "updated_at"]
    actions = ["launch", "pause", "close", "reopen"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["title", "slug", "owner", "label_set", "status"]}),
        ("Design", {"fields": ["votes_per_image", "images_per_participant", "gold_rate", "gold_pass_threshold",
                               "shuffle_labels", "random_seed", "finish_when_paused", "fast_response_ms"]}),
        ("Texts and links", {"fields": ["language", "consent_text", "instructions_text", "completion_code",
                                        "no_consent_code", "screened_out_code", "completion_url", "url_parameters"]}),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_images=count_subquery(Stimulus.objects.filter(is_gold=False), "study"),
            n_gold=count_subquery(Stimulus.objects.filter(is_gold=True), "study"),
            n_participants=count_subquery(Participant.objects.all(), "study"),
        )

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the actions (and the dashboard), which enforce the rules.
        return [*self.readonly_fields, "status"] if obj is not None else self.readonly_fields

    @admin.display(description="images", ordering="n_images")
    def n_images(self, obj):
        return obj.n_images

    @admin.display(description="gold", ordering="n_gold")
    def n_gold(self, obj):
        return obj.n_gold

    @admin.display(description="participants", ordering="n_participants")
    def n_participants(self, obj):
        return obj.n_participants

    @admin.display(description="dashboard")
    def dashboard(self, obj):
        return format_html('<a href="{}">open</a>', reverse("study:researcher-study-detail", args=[obj.slug]))

    def _set_status(self, request, queryset, status: str, reopen: bool = False) -> None:
        changed = 0
        for study in queryset:
            try:
                study_set_status(study=study, status=status, reopen=reopen)
                changed += 1
            except DomainError as error:
                self.message_user(request, f"{study.slug}: {error.message}", messages.ERROR)
        if changed:
            self.message_user(request, f"{changed} stud{'y' if changed == 1 else 'ies'} set to {status}.")

    @admin.action(description="Launch (set live)")
    def launch(self, request, queryset):
        self._set_status(request, queryset, Study.Status.LIVE)

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._set_status(request, queryset, Study.Status.PAUSED)

    @admin.action(description="Close")
    def close(self, request, queryset):
        self._set_status(request, queryset, Study.Status.CLOSED)

    @admin.action(description="Reopen closed studies (as paused)")
    def reopen(self, request, queryset):
        self._set_status(request, queryset, Study.Status.PAUSED, reopen=True)


# --- stimuli ---------------------------------------------------------------------------------------


@admin.register(Stimulus)
class StimulusAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "name", "study", "ground_truth", "valence", "arousal", "is_gold", "n_votes",
                    "size", "source", "created_at"]
    list_display_links = ["thumbnail", "name"]
    list_filter = ["study", "is_gold", "ground_truth", "source"]
    list_select_related = ["study"]
    search_fields = ["original_name", "sha256", "source", "ground_truth"]
    readonly_fields = ["preview", "image", "public_id", "sha256", "original_name", "width", "height", "metadata",
                       "created_at"]
    fields = ["preview", "study", "original_name", "ground_truth", "valence", "arousal", "is_gold", "source",
              "metadata", "image", "public_id", "sha256", "width", "height", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_votes=Count("votes"))

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "study"] if obj is not None else self.readonly_fields

    def has_add_permission(self, request):
        return False  # images come in through the study page's upload or `manage.py import_stimuli`

    def _image_url(self, obj) -> str:
        return reverse("study:researcher-stimulus-image", args=[obj.study.slug, obj.public_id])

    @admin.display(description="image")
    def thumbnail(self, obj):
        return format_html('<img src="{}" alt="" loading="lazy" style="width:48px;height:48px;object-fit:cover">',
                           self._image_url(obj))

    @admin.display(description="preview")
    def preview(self, obj):
        return format_html('<img src="{}" alt="" style="max-width:240px">', self._image_url(obj))

    @admin.display(description="name", ordering="original_name")
    def name(self, obj):
        return str(obj)

    @admin.display(description="votes", ordering="n_votes")
    def n_votes(self, obj):
        return _votes_link(obj.n_votes, "stimulus", obj.pk)

    @admin.display(description="size")
    def size(self, obj):
        return f"{obj.width}×{obj.height}"


# --- participants, assignments, votes ---------------------------------------------------------------


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study", "started_at", "finished_at", "n_votes", "gold_score", "excluded",
                    "exclusion_reason", "user_agent_family"]
    list_filter = ["excluded", "is_test", "study", ("finished_at", admin.EmptyFieldListFilter), "user_agent_family",
                   "device_type"]
    list_select_related = ["study"]
    search_fields = ["=public_id", "external_ids", "exclusion_reason"]
    readonly_fields = ["public_id", "study", "external_ids", "user_agent_family", "label_order", "started_at",
                       "consented_at", "finished_at", "gold_answered", "gold_correct", "gold_score"]
    exclude = ["token"]  # the cookie secret; never shown
    actions = ["mark_excluded", "mark_included"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_votes=Count("votes"))

    def has_add_permission(self, request):
        return False  # participants arrive through the study link

    @admin.display(description="votes", ordering="n_votes")
    def n_votes(self, obj):
        return _votes_link(obj.n_votes, "participant", obj.pk)

    @admin.action(description="Exclude from the analysis (votes kept)")
    def mark_excluded(self, request, queryset):
        changed = participants_set_excluded(participants=queryset, excluded=True, reason="Excluded by a researcher.")
        self.message_user(request, f"{changed} participant(s) excluded.")

    @admin.action(description="Include again in the analysis")
    def mark_included(self, request, queryset):
        changed = participants_set_excluded(participants=queryset, excluded=False)
        self.message_user(request, f"{changed} participant(s) included again.")


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["participant", "position", "stimulus", "study", "served_at", "answered_at"]
    list_filter = ["stimulus__study", ("answered_at", admin.EmptyFieldListFilter), StimulusIdFilter,
                   ParticipantIdFilter]
    list_select_related = ["participant", "stimulus__study"]
    search_fields = ["=participant__public_id", "stimulus__original_name"]

    @admin.display(description="study", ordering="stimulus__study")
    def study(self, obj):
        return obj.stimulus.study.slug


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["id", "label", "stimulus", "participant", "study", "response_ms", "created_at"]
    list_filter = ["label", "stimulus__study", "stimulus__is_gold", "participant__excluded", StimulusIdFilter,
                   ParticipantIdFilter]
    list_select_related = ["participant", "stimulus__study"]
    search_fields = ["label", "stimulus__original_name", "=participant__public_id"]
    date_hierarchy = "created_at"

    @admin.display(description="study", ordering="stimulus__study")
    def study(self, obj):
        return obj.stimulus.study.slug


# --- models and predictions ------------------------------------------------------------------------


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "is_public", "kind", "arch", "status", "is_demo", "input_size", "class_list",
                    "n_predictions", "created_at"]
    list_filter = ["status", "kind", "arch", "is_demo", "is_public"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner", "shared_with"]
    search_fields = ["name", "sha256", "notes"]
    readonly_fields = ["checkpoint", "sha256", "kind", "arch", "classes", "input_size", "normalization", "metrics",
                       "status", "validation_error", "validation_started_at", "created_by", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_predictions=Count("predictions"))

    def has_add_permission(self, request):
        return False  # checkpoints are registered (and validated) on the Models page or with register_model

    @admin.display(description="classes")
    def class_list(self, obj):
        return ", ".join(obj.classes or [])

    @admin.display(description="predictions", ordering="n_predictions")
    def n_predictions(self, obj):
        return obj.n_predictions


@admin.register(PredictionJob)
class PredictionJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "study", "model_version", "state", "done", "total", "failed", "created_by",
                    "created_at", "finished_at"]
    list_filter = ["state", "study", "model_version"]
    list_select_related = ["study", "model_version", "created_by"]
    search_fields = ["study__slug", "model_version__name", "celery_task_id"]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "stimulus", "study", "model_version", "top_label", "ambiguity", "dropped_mass",
                    "created_at"]
    list_filter = ["model_version", "stimulus__study"]
    list_select_related = ["model_version", "stimulus__study__label_set"]
    search_fields = ["stimulus__original_name", "model_version__name"]

    @admin.display(description="study", ordering="stimulus__study")
    def study(self, obj):
        return obj.stimulus.study.slug

    @admin.display(description="top label")
    def top_label(self, obj):
        labels, distribution = obj.stimulus.study.label_set.labels, obj.distribution or []
        if not distribution or len(distribution) != len(labels):
            return "—"
        best = max(range(len(distribution)), key=distribution.__getitem__)
        return f"{labels[best]} ({distribution[best]:.2f})"
