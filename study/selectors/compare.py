"""Reads for the comparison view and exports: a constant number of SQL queries, then numpy.

`comparison_data` fetches the study's regular (non-gold) stimuli, their human vote counts (excluded
participants left out by default) and every model's predictions, as aligned arrays in the study's label
order. Per-image metrics are then computed for all images at once (study.analysis.metrics).
"""
from __future__ import annotations

import csv
import hashlib
import heapq
import io
import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Q

from study.analysis import metrics
from study.models import ModelVersion, Participant, Prediction, Stimulus, Study, Vote
from study.selectors.votes import counted_vote_filter, counted_votes


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
    votes = counted_votes(study, include_excluded=include_excluded)
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
    """Votes and participants counted (one query each); simulated ones also on their own."""
    people = Participant.objects.filter(study=study).aggregate(
        participants=Count("pk"), excluded=Count("pk", filter=Q(excluded=True)),
        finished=Count("pk", filter=Q(finished_at__isnull=False)),
        simulated=Count("pk", filter=Q(is_simulated=True)))
    votes = Vote.objects.filter(stimulus__study=study).aggregate(
        all=Count("pk"), counted=Count("pk", filter=counted_vote_filter(study) & Q(stimulus__is_gold=False)),
        simulated=Count("pk", filter=Q(participant__is_simulated=True, stimulus__is_gold=False)))
    return {**people, "votes": votes["all"], "votes_counted": votes["counted"], "votes_simulated": votes["simulated"],
            "include_simulated": study.include_simulated}


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


LAMBDA_COLUMNS = ("lambda", "lam", "λ")


def _push_bounded(heap: list, item: tuple, size: int) -> None:
    """Keep the `size` largest items of a min-heap."""
    if len(heap) < size:
        heapq.heappush(heap, item)
    else:
        heapq.heappushpop(heap, item)


def lambda_export_summary(*, export_file, keep: int = 25) -> dict:
    """A training run's lambdas.csv (ml.train writes index, path, given_label, original_label, flipped,
    lambda): the `keep` lowest and highest uncertainty factors and, when the file says which labels were
    flipped, how well a low λ flags them (mean λ each side, AUROC).

    One pass with two bounded heaps, so memory does not grow with the training set beyond one float and
    one flag per row. Unreadable files and bad values come back as an `error` message, never an exception.
    """
    result = {"error": "", "lowest": [], "highest": [], "count": 0, "skipped": 0, "flipped": None}
    lowest: list = []  # max-heap by -λ of the `keep` smallest
    highest: list = []  # min-heap by λ of the `keep` largest
    values, flags = array("d"), bytearray()
    try:
        with export_file.open("rb") as handle:
            reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8", newline=""))
            key = next((k for k in LAMBDA_COLUMNS if k in (reader.fieldnames or [])), None)
            if key is None:
                return {**result, "error": "the λ export has no 'lambda' column"}
            has_flips = "flipped" in reader.fieldnames
            for seq, row in enumerate(reader):
                try:
                    value = float(row[key])
                except (TypeError, ValueError):
                    value = math.nan
                if not math.isfinite(value):
                    result["skipped"] += 1
                    continue
                row = {"lambda_value": value, "given_label": row.get("given_label") or row.get("label") or "",
                       "original_label": row.get("original_label") or "", "flipped": row.get("flipped") or "",
                       "image": row.get("path") or row.get("index") or ""}
                values.append(value)
                flags.append(1 if has_flips and str(row.get("flipped", "")).strip().lower() in ("1", "true") else 0)
                _push_bounded(lowest, (-value, -seq, row), keep)
                _push_bounded(highest, (value, -seq, row), keep)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        return {**result, "error": f"could not read the λ export: {exc}"}
    result["count"] = len(values)
    result["lowest"] = [row for *_, row in sorted(lowest, key=lambda item: (-item[0], -item[1]))]
    result["highest"] = [row for *_, row in sorted(highest, key=lambda item: (-item[0], -item[1]))]
    if has_flips and values:
        lam = np.frombuffer(values, dtype=np.float64)
        flipped = np.frombuffer(bytes(flags), dtype=np.uint8).astype(bool)
        result["flipped"] = {
            "n": int(flipped.sum()),
            "mean_flipped": float(lam[flipped].mean()) if flipped.any() else None,
            "mean_clean": float(lam[~flipped].mean()) if (~flipped).any() else None,
            "auroc": metrics.auroc(-lam, flipped),  # low λ should mean a flipped label
        }
    return result
