"""Researcher forms: create a study, upload stimuli, change a study's status.

Forms check the shape of the input; business rules live in study/services and come back as messages.
"""
from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from study.errors import InvalidInput
from study.models import LabelSet, Study, StudyCollaborator
from study.selectors.label_sets import label_set_default, label_sets_with_models
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
    votes_per_image = forms.IntegerField(initial=10, min_value=1, max_value=1000,
                                         help_text="Fixed allocation: every image gets this many votes.")
    allocation = forms.ChoiceField(choices=[
        (Study.Allocation.FIXED, "Fixed: the same number of votes for every image"),
        (Study.Allocation.ADAPTIVE, Study.Allocation.ADAPTIVE.label)], initial=Study.Allocation.FIXED, required=False)
    min_votes_per_image = forms.IntegerField(initial=3, min_value=1, max_value=1000, required=False,
                                             help_text="Adaptive allocation: at least this many votes per image.")
    max_votes_per_image = forms.IntegerField(initial=30, min_value=1, max_value=1000, required=False,
                                             help_text="Adaptive allocation: at most this many votes per image.")
    stability_threshold = forms.FloatField(
        initial=0.02, min_value=0.001, max_value=0.5, required=False,
        help_text="Adaptive allocation: an image is settled when the expected JS divergence of its vote "
                  "distribution's posterior to its mean is at most this (0.02 is about 20 votes for an "
                  "ambiguous face, far fewer for a clear one).",
    )
    images_per_participant = forms.IntegerField(initial=20, min_value=1, max_value=1000)

    class Meta:
        model = Study
        fields = [
            "title", "slug", "label_set", "allocation", "votes_per_image", "min_votes_per_image",
            "max_votes_per_image", "stability_threshold", "images_per_participant", "gold_rate",
            "gold_pass_threshold", "shuffle_labels", "consent_text", "instructions_text", "completion_url",
            "url_parameters", "language", "finish_when_paused", "fast_response_ms", "face_crop",
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
        describe_label_sets(self.fields["label_set"])
        default = label_set_default()
        if default is not None and not self.is_bound:
            self.initial.setdefault("label_set", default.pk)
        # New settings have defaults, so older clients (and scripts) that do not send them still work.
        self.fields["language"].required = False
        self.fields["fast_response_ms"].required = False
        self.fields["face_crop"].required = False
        self.fields["fast_response_ms"].label = "Flag votes faster than (ms)"
        self.fields["fast_response_ms"].help_text = ("Votes faster than this (milliseconds) are flagged too_fast in "
                                                     "the exports; 0 turns the flag off. Default 300.")
        # Blank by default: the service fills in the default text in the study's language.
        self.fields["consent_text"].widget.attrs["placeholder"] = str(DEFAULT_CONSENT_TEXT)
        self.fields["instructions_text"].widget.attrs["placeholder"] = str(DEFAULT_INSTRUCTIONS_TEXT)
        self.fields["consent_text"].required = False
        self.fields["instructions_text"].required = False
        self.fields["consent_text"].help_text = "Leave empty for the default text in the study's language."
        self.fields["instructions_text"].help_text = "Leave empty for the default text in the study's language."
        for name in self.ADAPTIVE_ONLY:  # study_form.js shows them only while "Adaptive" is chosen
            self.fields[name].widget.attrs["data-allocation-only"] = Study.Allocation.ADAPTIVE

    def clean_language(self) -> str:
        return self.cleaned_data.get("language") or "en"

    def clean_face_crop(self) -> str:
        return self.cleaned_data.get("face_crop") or Study.FaceCrop.OFF

    def clean_fast_response_ms(self) -> int:
        value = self.cleaned_data.get("fast_response_ms")
        return 300 if value is None else value

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

    ADAPTIVE_DEFAULTS = {"allocation": Study.Allocation.FIXED, "min_votes_per_image": 3, "max_votes_per_image": 30,
                         "stability_threshold": 0.02}

    ADAPTIVE_ONLY = ("min_votes_per_image", "max_votes_per_image", "stability_threshold")

    def clean(self):
        data = super().clean()
        if data.get("allocation") in (None, "", Study.Allocation.FIXED) and "allocation" not in self.errors:
            # Fixed allocation ignores the adaptive settings (a browser without JavaScript still sends them).
            for name in self.ADAPTIVE_ONLY:
                self.errors.pop(name, None)
                data[name] = self.ADAPTIVE_DEFAULTS[name]
        for name, default in self.ADAPTIVE_DEFAULTS.items():  # optional: older clients and scripts omit them
            if data.get(name) in (None, "") and name not in self.errors:
                data[name] = default
        low, high = data.get("min_votes_per_image"), data.get("max_votes_per_image")
        if low is not None and high is not None and low > high:
            self.add_error("max_votes_per_image", "The maximum must be at least the minimum.")
        return data


def describe_label_sets(field: forms.ModelChoiceField) -> None:
    """Each option names the models that can serve the label set, so nobody picks one that no model serves."""
    served = {label_set.pk: names for label_set, names in label_sets_with_models()}

    def label(label_set: LabelSet) -> str:
        names = served.get(label_set.pk, [])
        models = f"served by {', '.join(names)}" if names else "no registered model serves it"
        return f"{label_set.name}: {', '.join(label_set.answers)} ({models})"

    field.label_from_instance = label
    field.help_text = ("Which answers participants choose from. Models are matched by emotion name; "
                       "non-emotion answers (Unknown, Not a face) need no model class.")


class StudyEditForm(forms.ModelForm):
    """Edit a study. Fields the rules lock (study_locked_fields) are shown disabled, with the reason."""

    url_parameters = forms.CharField(
        required=False, label="Extra URL parameters",
        help_text="Comma-separated names to record beside PROLIFIC_PID, STUDY_ID and SESSION_ID.")
    gold_rate = forms.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(0.9)])
    gold_pass_threshold = forms.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    completion_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Completion URL")
    votes_per_image = forms.IntegerField(min_value=1, max_value=1000)
    images_per_participant = forms.IntegerField(min_value=1, max_value=1000)

    class Meta:
        model = Study
        fields = [
            "title", "slug", "label_set", "votes_per_image", "images_per_participant", "gold_rate",
            "gold_pass_threshold", "shuffle_labels", "consent_text", "instructions_text", "language",
            "completion_url", "completion_code", "no_consent_code", "screened_out_code", "finish_when_paused",
            "fast_response_ms", "url_parameters", "face_crop",
        ]
        labels = {"completion_code": "Completion code (finished)", "no_consent_code": "Code for no consent",
                  "screened_out_code": "Code for screened out / failed attention checks"}
        widgets = {"consent_text": forms.Textarea(attrs={"rows": 6}), "instructions_text": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, locked: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label_set"].queryset = LabelSet.objects.order_by("name")
        self.fields["label_set"].empty_label = None
        describe_label_sets(self.fields["label_set"])
        if not self.is_bound:
            self.initial["url_parameters"] = ", ".join(self.instance.url_parameters or [])
        self.fields["face_crop"].required = False  # older clients and scripts omit it: unchanged
        for name, reason in (locked or {}).items():
            if name in self.fields:
                self.fields[name].disabled = True
                self.fields[name].help_text = reason

    def clean_url_parameters(self) -> list[str]:
        try:
            return study_clean_url_parameters(self.cleaned_data.get("url_parameters", "").split(","))
        except InvalidInput as error:
            raise forms.ValidationError(error.message) from None

    def clean_face_crop(self) -> str:
        return self.cleaned_data.get("face_crop") or self.instance.face_crop

    def changes(self) -> dict:
        """Only the fields a researcher could edit (disabled ones keep their value and are left out)."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields if not self.fields[name].disabled}


class StudyCloneForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, help_text="The clone's participant link: /s/<slug>/.")


class CollaboratorForm(forms.Form):
    username = forms.CharField(max_length=254, label="Researcher's user name or email")
    role = forms.ChoiceField(choices=StudyCollaborator.Role.choices)


class LabelSetForm(forms.Form):
    name = forms.CharField(max_length=64)
    emotions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="One emotion per line, in the order participants see them. Optionally a key after '=', e.g. "
                  "“Happiness = h”. Standard names (Happiness, Anger, ...) let registered models serve the set.")
    non_emotion = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Non-emotion answers",
        help_text="Optional, one per line, e.g. “Unknown” and “Not a face” (as in FER+). Shown after the emotions; "
                  "left out of the emotion distributions and reported as counts.")


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
    keep_faceless = forms.BooleanField(
        required=False, label="Import photos with no face whole",
        help_text="Only for studies that detect and crop faces: a photo in which no face is found is then imported "
                  "as it is (else it is only reported).",
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


class VoteImportForm(forms.Form):
    """Existing annotations as a CSV (study.services.vote_imports describes the two layouts)."""

    source = forms.CharField(max_length=100, label="Source name", help_text="e.g. FER+ taggers")
    file = forms.FileField(label="CSV file", help_text="Long (filename, annotator, label[, response_ms]) or counts "
                                                       "(filename plus one column per label).")
