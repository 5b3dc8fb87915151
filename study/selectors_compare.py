"""Reads for the comparison view and exports: a constant number of SQL queries, then numpy.

`comparison_data` fetches the study's regular (non-gold) stimuli, their human vote counts (excluded
participants left out by default) and every model's predictions, as aligned arrays in the study's label
order. Per-image metrics are then computed for all images at once (study.metrics).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Q

from study import metrics
from study.models import ModelVersion, Participant, Prediction, Stimulus, Study, Vote


@dataclass
class ModelColumn:
    model: ModelVersion
    probs: np.ndarray  # (N, K); NaN rows where the model has no prediction for the image
    has: np.ndarray  # (N,) bool


@dataclass
class ComparisonData:
    study: Study
    labels: list[str]
    stimuli: list[dict]  # id, public_id, original_name, ground_truth, valence, arousal
    counts: np.ndarray  # (N, K) human votes
    models: list[ModelColumn] = field(default_factory=list)

    @property
    def n_votes(self) -> np.ndarray:
        return self.counts.sum(1)


def comparison_data(*, study: Study, include_excluded: bool = False, include_gold: bool = False) -> ComparisonData:
    labels = list(study.label_set.labels)
    index = {label: k for k, label in enumerate(labels)}
    stimuli_qs = Stimulus.objects.filter(study=study)
    if not include_gold:
        stimuli_qs = stimuli_qs.filter(is_gold=False)
    stimuli = list(stimuli_qs.order_by("pk").values("id", "public_id", "original_name", "ground_truth", "valence",
                                                      "arousal", "is_gold"))
    row = {s["id"]: i for i, s in enumerate(stimuli)}
    counts = np.zeros((len(stimuli), len(labels)))
    votes = Vote.objects.filter(stimulus__study=study)
    if not include_excluded:
        votes = votes.filter(participant__excluded=False)
    for stimulus_id, label, n in votes.order_by().values_list("stimulus_id", "label").annotate(n=Count("pk")):
        if stimulus_id in row and label in index:
            counts[row[stimulus_id], index[label]] = n
    by_model: dict[int, ModelColumn] = {}
    models = {m.pk: m for m in ModelVersion.objects.filter(predictions__stimulus__study=study).distinct()}
    for model_id, stimulus_id, distribution in Prediction.objects.filter(stimulus__study=study).values_list(
            "model_version_id", "stimulus_id", "distribution"):
        if stimulus_id not in row or len(distribution) != len(labels):
            continue
        column = by_model.setdefault(model_id, ModelColumn(models[model_id], np.full((len(stimuli), len(labels)), np.nan),
                                                           np.zeros(len(stimuli), dtype=bool)))
        column.probs[row[stimulus_id]] = distribution
        column.has[row[stimulus_id]] = True
    ordered = sorted(by_model.values(), key=lambda c: c.model.name)
    return ComparisonData(study=study, labels=labels, stimuli=stimuli, counts=counts, models=ordered)


def study_headcount(*, study: Study) -> dict:
    """Votes and participants counted (one query each)."""
    people = Participant.objects.filter(study=study).aggregate(
        participants=Count("pk"), excluded=Count("pk", filter=Q(excluded=True)),
        finished=Count("pk", filter=Q(finished_at__isnull=False)))
    votes = Vote.objects.filter(stimulus__study=study).aggregate(
        all=Count("pk"), counted=Count("pk", filter=Q(participant__excluded=False, stimulus__is_gold=False)))
    return {**people, "votes": votes["all"], "votes_counted": votes["counted"]}


def model_summaries(data: ComparisonData) -> list[dict]:
    """Study-level metrics per model over images with votes and a prediction, plus the split-half ceiling."""
    voted = data.n_votes > 0
    rows = []
    for column in data.models:
        use = voted & column.has
        result = metrics.summary(metrics.distribution(data.counts[use]), column.probs[use])
        rows.append({"name": column.model.name, "model_id": column.model.pk, **result.as_dict()})
    rows.append({"name": "Human split-half ceiling", "model_id": None,
                 **split_half_ceiling_cached(data.counts[voted], seed=data.study.random_seed)})
    return rows


def split_half_ceiling_cached(counts: np.ndarray, *, seed: int, splits: int = 100) -> dict:
    """The ceiling depends only on the vote counts, so it is cached under their hash (about 0.3 s saved
    per page view at 1,000 images; a new vote changes the counts and so the key)."""
    key = "ceiling:" + hashlib.sha256(np.ascontiguousarray(counts, dtype=np.int64).tobytes()
                                      + f":{counts.shape}:{seed}:{splits}".encode()).hexdigest()
    result = cache.get(key)
    if result is None:
        result = metrics.split_half_ceiling(counts, splits=splits, seed=seed).as_dict()
        cache.set(key, result, timeout=24 * 3600)
    return result
