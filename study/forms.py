"""Researcher forms: create a study, upload stimuli, change a study's status.

Forms check the shape of the input; business rules live in study/services and come back as messages.
"""
from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from study.errors import InvalidInput
from study.models import LabelSet, Study
from study.services.stimuli import MAX_IMAGE_BYTES, MAX_MANIFEST_BYTES
from study.services.studies import (
    DEFAULT_CONSENT_TEXT,
    DEFAULT_INSTRUCTIONS_TEXT,
    RESERVED_SLUGS,
    study_clean_url_parameters,
)


class StudyCreateForm(forms.ModelForm):
    url_parameters = forms.CharField(
        required=False,
        label="Extra URL parameters",
        help_text="Comma-separated names to record beside PROLIFIC_PID, STUDY_ID and SESSION_ID, e.g. cohort, workerId.",
    )
    gold_rate = forms.FloatField(
        initial=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.9)],
        help_text="Fraction of each participant's trials that are gold (attention) items, 0 to 0.9.",
    )
    gold_pass_threshold = forms.FloatField(
        initial=0.75, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction of gold items a participant must get right, 0 to 1; below it they are excluded.",
    )
    completion_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", label="Completion URL",
        help_text="Where to send a participant who finished; ?cc=<completion code> is appended. Optional.",
    )
    votes_per_image = forms.IntegerField(initial=10, min_value=1, max_value=1000)
    images_per_participant = forms.IntegerField(initial=20, min_value=1, max_value=1000)

    class Meta:
        model = Study
        fields = [
            "title", "slug", "label_set", "votes_per_image", "images_per_participant", "gold_rate",
            "gold_pass_threshold", "shuffle_labels", "consent_text", "instructions_text", "completion_url",
            "url_parameters",
        ]
        help_texts = {"slug": "Part of the participant link: /s/<slug>/. Lowercase letters, digits and hyphens."}
        widgets = {
            "consent_text": forms.Textarea(attrs={"rows": 6}),
            "instructions_text": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label_set"].queryset = LabelSet.objects.order_by("name")
        self.fields["label_set"].empty_label = None
        self.fields["consent_text"].initial = DEFAULT_CONSENT_TEXT
        self.fields["instructions_text"].initial = DEFAULT_INSTRUCTIONS_TEXT

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip().lower()
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(f"“{slug}” is reserved; choose another slug.")
        return slug

    def clean_url_parameters(self) -> list[str]:
        try:
            return study_clean_url_parameters(self.cleaned_data.get("url_parameters", "").split(","))
        except InvalidInput as error:
            raise forms.ValidationError(error.message) from None


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,.zip"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        items = [item for item in (data if isinstance(data, (list, tuple)) else [data]) if item]
        if not items:
            single(None, initial)  # raises "This field is required."
            return []
        return [single(item, initial) for item in items]


class StimulusUploadForm(forms.Form):
    files = MultipleFileField(
        label="Images or zip",
        help_text=f"JPEG, PNG or WebP images (at most {MAX_IMAGE_BYTES // 2**20} MB each), or .zip files of them.",
    )
    manifest = forms.FileField(
        required=False,
        label="Manifest (optional CSV)",
        help_text="Columns filename,label,valence,arousal,is_gold; only filename is required.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_manifest(self):
        manifest = self.cleaned_data.get("manifest")
        if manifest is None:
            return None
        if not manifest.name.lower().endswith(".csv"):
            raise forms.ValidationError("The manifest must be a .csv file.")
        if manifest.size > MAX_MANIFEST_BYTES:
            raise forms.ValidationError(f"The manifest is too large (at most {MAX_MANIFEST_BYTES // 2**20} MB).")
        return manifest


class StudyStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Study.Status.choices)
    reopen = forms.BooleanField(required=False)
