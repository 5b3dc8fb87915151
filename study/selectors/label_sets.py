"""Which registered models can serve which label set, and the label set a new study starts with.

A model serves a label set when every emotion of the set has a model class of the same name (through
ml.labels' aliases); extra model classes are dropped at prediction time. Non-emotion answers
("Unknown", "Not a face") never need a model class.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from study.analysis.label_mapping import LabelMismatch, label_mapping_build
from study.models import ImportedVote, LabelSet, ModelVersion, Prediction, Stimulus, Study, Vote


@dataclass(frozen=True)
class ModelFit:
    model: ModelVersion
    serves: bool
    reason: str = ""  # why not, when it does not
    with_missing_labels: bool = False  # it does not, but may run with "allow missing labels" (those get probability 0)


def model_fit(*, model: ModelVersion, label_set: LabelSet) -> ModelFit:
    try:
        label_mapping_build(model_classes=model.classes or [], study_labels=label_set.labels)
    except LabelMismatch as mismatch:
        try:
            label_mapping_build(model_classes=model.classes or [], study_labels=label_set.labels, allow_missing=True)
        except LabelMismatch:
            return ModelFit(model, False, f"no class for {', '.join(mismatch.missing)}")
        return ModelFit(model, False, f"no class for {', '.join(mismatch.missing)}", with_missing_labels=True)
    return ModelFit(model, True)


def predict_choices(fits: list[ModelFit]) -> dict:
    """The predict form's context: models that serve the set, models that may run with missing labels (offered
    too, for the "allow missing labels" box), and every model that does not serve it, with the reason."""
    return {"models": [fit.model for fit in fits if fit.serves],
            "partial_models": [fit for fit in fits if fit.with_missing_labels],
            "unfit_models": [fit for fit in fits if not fit.serves]}


def models_for_label_set(*, label_set: LabelSet, models=None) -> list[ModelFit]:
    """Every validated model (or those of `models`, e.g. the ones a user may run), with whether it can serve
    `label_set` (and why not)."""
    if models is None:
        models = ModelVersion.objects.filter(status=ModelVersion.Status.VALID)
    models = models.order_by("name")
    return [model_fit(model=model, label_set=label_set) for model in models]


FALLBACK_LABEL_SET = "RAF-DB basic-7"  # the demo model's classes, before any model is registered


def label_sets_with_models() -> list[tuple[LabelSet, list[str]]]:
    """Each label set with the names of the registered models (not invalid ones) that can serve it."""
    models = list(ModelVersion.objects.exclude(status=ModelVersion.Status.INVALID).order_by("name"))
    result = []
    for label_set in LabelSet.objects.order_by("name"):
        result.append((label_set, [m.name for m in models if model_fit(model=m, label_set=label_set).serves]))
    return result


def label_set_default() -> LabelSet | None:
    """The label set served by the most registered models (the demo model breaks ties), else the first."""
    best, best_key = None, None
    demo_models = set(ModelVersion.objects.filter(is_demo=True).values_list("name", flat=True))
    for label_set, served_by in label_sets_with_models():
        key = (len(served_by), bool(demo_models & set(served_by)), label_set.name == FALLBACK_LABEL_SET)
        if best_key is None or key > best_key:
            best, best_key = label_set, key
    return best


def label_set_lock_reason(*, label_set: LabelSet) -> str:
    """Why the answers of `label_set` (names, order, number, which are emotions) may no longer change, or "".

    Votes, imported votes and ground-truth labels store answers by name and predictions store a vector in
    the set's order, so once a study using the set has been launched or holds any of them, changing the
    answers would change what that data means. Keys and the set's own name may still change.
    """
    has_data = (Q(status__in=[Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED])
                | Exists(Vote.objects.filter(stimulus__study=OuterRef("pk")))
                | Exists(ImportedVote.objects.filter(stimulus__study=OuterRef("pk")))
                | Exists(Prediction.objects.filter(stimulus__study=OuterRef("pk")))
                | Exists(Stimulus.objects.filter(study=OuterRef("pk")).exclude(ground_truth="")))
    studies = list(Study.objects.filter(label_set=label_set).filter(has_data).order_by("title")
                   .values_list("title", flat=True)[:4])
    if not studies:
        return ""
    named = ", ".join(f"“{title}”" for title in studies[:3]) + (" and others" if len(studies) > 3 else "")
    one = len(studies) == 1
    return (f"Used by {named}, which {'has' if one else 'have'} been launched or already "
            f"{'holds' if one else 'hold'} votes, predictions or ground-truth labels: "
            "the answers' names, order and number are locked, "
            "so that data keeps its meaning. Keyboard keys and the set's name may still change; to change the "
            "answers, make a new label set from this one.")


def label_set_editable_by(*, label_set: LabelSet, user) -> bool:
    """Its creator and superusers may edit a label set; the seeded ones (no creator) only superusers."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser or (label_set.created_by_id is not None and label_set.created_by_id == user.pk))
