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
from django.db.models import Count, Q, Sum

from study.analysis import aggregation, ceilings, label_coverage, metrics
from study.analysis.label_mapping import missing_study_labels
from study.models import ImportedVote, ModelVersion, Participant, Prediction, Stimulus, Study, Vote, VoteSource
from study.selectors.votes import counted_vote_filter, counted_votes


@dataclass
class ModelColumn:
    model: ModelVersion
    probs: np.ndarray  # (N, K); NaN rows where the model has no prediction for the image
    has: np.ndarray  # (N,) bool
    missing: tuple[str, ...] = ()  # study labels the model has no class for (probability 0 in its predictions)


@dataclass
class ComparisonData:
    study: Study
    labels: list[str]
    stimuli: list[dict]  # id, public_id, original_name, ground_truth, valence, arousal
    counts: np.ndarray  # (N, K) human votes
    models: list[ModelColumn] = field(default_factory=list)
    # Non-emotion answers ("Unknown", "Not a face"): left out of `counts`, reported as totals per answer.
    non_emotion_counts: dict[str, int] = field(default_factory=dict)

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
    others = {label: 0 for label in study.label_set.non_emotion_labels}
    for stimulus_id, label, n in votes.order_by().values_list("stimulus_id", "label").annotate(n=Count("pk")):
        if stimulus_id in row and label in index:
            counts[row[stimulus_id], index[label]] = n
        elif stimulus_id in row and label in others:
            others[label] += n
    by_model: dict[int, ModelColumn] = {}
    models = {m.pk: m for m in ModelVersion.objects.filter(predictions__stimulus__study=study).distinct()}
    for model_id, stimulus_id, distribution in Prediction.objects.filter(stimulus__study=study).values_list(
            "model_version_id", "stimulus_id", "distribution"):
        if stimulus_id not in row or len(distribution) != len(labels):
            continue
        if model_id not in by_model:
            model = models[model_id]
            by_model[model_id] = ModelColumn(model, np.full((len(stimuli), len(labels)), np.nan),
                                             np.zeros(len(stimuli), dtype=bool),
                                             missing_study_labels(model_classes=model.classes, study_labels=labels))
        column = by_model[model_id]
        column.probs[row[stimulus_id]] = distribution
        column.has[row[stimulus_id]] = True
    ordered = sorted(by_model.values(), key=lambda c: c.model.name)
    return ComparisonData(study=study, labels=labels, stimuli=stimuli, counts=counts, models=ordered,
                          non_emotion_counts=others)


def study_headcount(*, study: Study) -> dict:
    """Votes and participants counted (one query each); simulated ones also on their own."""
    people = Participant.objects.filter(study=study, is_test=False).aggregate(  # previews never count
        participants=Count("pk"), excluded=Count("pk", filter=Q(excluded=True)),
        finished=Count("pk", filter=Q(finished_at__isnull=False)),
        simulated=Count("pk", filter=Q(is_simulated=True)))
    votes = Vote.objects.filter(stimulus__study=study, participant__is_test=False).aggregate(
        all=Count("pk"), counted=Count("pk", filter=counted_vote_filter(study) & Q(stimulus__is_gold=False)),
        simulated=Count("pk", filter=Q(participant__is_simulated=True, stimulus__is_gold=False)))
    return {**people, "votes": votes["all"], "votes_counted": votes["counted"], "votes_simulated": votes["simulated"],
            "include_simulated": study.include_simulated}


CEILING_NAMES = {
    "noise_floor": "Human noise floor (headline ceiling)",
    "full_crowd": "Human full-crowd ceiling",
    "split_half": "Human split-half ceiling",
}


LABEL_SCOPES = label_coverage.LABEL_SCOPES
OTHER_SCOPE_FIELDS = ("label_scope", "labels_scored", "n_images", *metrics.SUMMARY_FIELDS, "fraction")


def model_summaries(data: ComparisonData, counts: np.ndarray | None = None, human: np.ndarray | None = None,
                    others: dict[str, np.ndarray] | None = None, label_scope: str = "all") -> list[dict]:
    """Study-level metrics per model over images with votes and a prediction, each also as a fraction of the
    headline ceiling, then the three human ceilings with their Monte-Carlo s.e. (study.analysis.ceilings).

    counts: the human reference votes (default the live votes; the comparison view may pass an imported
    source or live + imported). human: (N, K) distributions to score against instead of the vote shares
    (an aggregation method); the ceilings are defined for vote shares only, so they are left out then.
    others: named (N, K) vote counts of other human sources, each scored like a model against the reference.

    label_scope: "all" (default) scores each model over all the study's labels; "shared" scores a model that
    lacks some labels over the labels it has only, both sides renormalised (study.analysis.label_coverage),
    its "of ceiling" taken of the ceilings of those labels' votes. Every model row says which labels it lacks
    (missing_labels), which labels its figures cover (labels_scored), how many images have votes only on
    labels it lacks (only_missing_images: left out of the shared-labels figures) and, for a model lacking
    labels, the other scope's figures (other_scope; None for a model with every label; in the "all" scope its
    fraction is None: the shared labels' ceilings are computed only when that scope is asked for). The ceiling
    and imported-source rows always cover all labels."""
    if label_scope not in LABEL_SCOPES:
        raise ValueError(f"label_scope must be one of {', '.join(LABEL_SCOPES)}")
    counts = data.counts if counts is None else counts
    voted = counts.sum(1) > 0
    reference_shares = metrics.distribution(counts) if human is None else human
    voted &= ~np.isnan(reference_shares).any(1)
    headline = None
    if human is None:
        reference = human_ceilings_cached(counts[voted], seed=data.study.random_seed)
        headline = reference[reference["headline"]]
    rows = []
    for column in data.models:
        use = voted & column.has
        result = metrics.summary(reference_shares[use], column.probs[use]).as_dict()
        all_labels = {**result, "label_scope": "all", "labels_scored": list(data.labels),
                      "fraction": ceilings.fraction_of_ceiling(result, headline) if headline else None}
        row = {"name": column.model.name, "model_id": column.model.pk, "missing_labels": list(column.missing),
               "only_missing_images": 0, "other_scope": None}
        if not column.missing:
            rows.append({**row, **all_labels, "label_scope": label_scope})  # both scopes are the same figures
            continue
        # The shared labels' ceilings (about as long again as the study's, on a first view) only when shown.
        shared, left_out = _shared_labels_figures(data, column.missing, reference_shares[use], column.probs[use],
                                                  counts[voted], with_ceilings=human is None and label_scope == "shared")
        main, alternative = (all_labels, shared) if label_scope == "all" else (shared, all_labels)
        rows.append({**row, **main, "only_missing_images": left_out,
                     "other_scope": {key: alternative[key] for key in OTHER_SCOPE_FIELDS}})
    for name, other in (others or {}).items():
        use = voted & (other.sum(1) > 0)
        result = metrics.summary(reference_shares[use], metrics.distribution(other[use])).as_dict()
        rows.append({"name": name, "model_id": None, "source": True, **result,
                     "fraction": ceilings.fraction_of_ceiling(result, headline) if headline else None})
    if headline is not None:
        for key, name in CEILING_NAMES.items():
            rows.append({**reference[key], "name": name, "model_id": None, "ceiling": key,
                         "headline": key == reference["headline"]})
    return rows


def _shared_labels_figures(data: ComparisonData, missing: tuple[str, ...], human: np.ndarray, probs: np.ndarray,
                           voted_counts: np.ndarray, *, with_ceilings: bool) -> tuple[dict, int]:
    """One model's summary over the labels it has, and the images left out (every vote on a label it lacks).

    human, probs: (M, K) the reference and the model's distributions on the images it is scored on;
    voted_counts: the vote counts of every voted image, whose shared-label part gives the ceilings its
    fraction is taken of (vote shares only)."""
    shared = label_coverage.shared_mask(data.labels, missing)
    summary, left_out = label_coverage.shared_label_summary(human, probs, shared)
    result = summary.as_dict()
    row = {**result, "label_scope": "shared", "fraction": None,
           "labels_scored": [label for label, keep in zip(data.labels, shared, strict=True) if keep]}
    if with_ceilings:
        reference = human_ceilings_cached(label_coverage.restrict_counts(voted_counts, shared),
                                          seed=data.study.random_seed)
        row["fraction"] = ceilings.fraction_of_ceiling(result, reference[reference["headline"]])
        row["ceiling_split_half"] = reference["split_half"]
    return row, left_out


def vote_sources(*, study: Study) -> list[VoteSource]:
    return list(VoteSource.objects.filter(study=study).order_by("name"))


def imported_counts(*, source: VoteSource, stimulus_ids: list[int], labels: list[str]) -> np.ndarray:
    """(N, K) vote counts of an imported source, aligned with `stimulus_ids` and `labels` (one query)."""
    row = {pk: i for i, pk in enumerate(stimulus_ids)}
    column = {label: k for k, label in enumerate(labels)}
    counts = np.zeros((len(stimulus_ids), len(labels)))
    for stimulus_id, label, n in (ImportedVote.objects.filter(source=source).order_by()
                                  .values_list("stimulus_id", "label").annotate(n=Sum("count"))):
        if stimulus_id in row and label in column:
            counts[row[stimulus_id], column[label]] = n
    return counts


def human_ceilings_cached(counts: np.ndarray, *, seed: int, splits: int = 100, resamples: int = 100) -> dict:
    """All three ceilings depend only on the vote counts, so they are cached under their hash (a new vote
    changes the counts and so the key)."""
    key = "ceilings:v1:" + hashlib.sha256(np.ascontiguousarray(counts, dtype=np.int64).tobytes()
                                          + f":{counts.shape}:{seed}:{splits}:{resamples}".encode()).hexdigest()
    result = cache.get(key)
    if result is None:
        result = ceilings.ceilings(np.asarray(counts, dtype=np.int64), splits=splits, resamples=resamples, seed=seed)
        cache.set(key, result, timeout=24 * 3600)
    return result


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


def study_votes_long(*, study: Study, stimulus_ids: list[int], labels: list[str]) -> aggregation.Votes:
    """Counted votes (study.selectors.votes: excluded and, unless included, simulated participants left out)
    on `stimulus_ids`, as long-format arrays in that row order: one query."""
    row = {pk: i for i, pk in enumerate(stimulus_ids)}
    column = {label: k for k, label in enumerate(labels)}
    task, worker, label = [], [], []
    for stimulus_id, participant_id, name in (counted_votes(study).order_by("pk")
                                              .values_list("stimulus_id", "participant_id", "label")):
        if stimulus_id in row and name in column:
            task.append(row[stimulus_id]), worker.append(participant_id), label.append(column[name])
    return aggregation.Votes.from_lists(task, np.asarray(worker, dtype=np.int64), label,
                                        n_tasks=len(stimulus_ids), n_labels=len(labels))


def aggregated_distributions(*, study: Study, method: str, stimulus_ids: list[int], labels: list[str]) -> np.ndarray:
    """(N, K) human distributions by an aggregation method (study.analysis.aggregation), NaN rows for images
    without votes. Cached by the votes themselves: Dawid-Skene, GLAD and MACE iterate to convergence."""
    votes = study_votes_long(study=study, stimulus_ids=stimulus_ids, labels=labels)
    if method in aggregation.COUNT_METHODS:
        return aggregation.aggregate(method, votes)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a, dtype=np.int64).tobytes()
                                     for a in (votes.task, votes.worker, votes.label)))
    key = f"aggregate:v1:{method}:{votes.n_tasks}:{votes.n_labels}:{digest.hexdigest()}"
    result = cache.get(key)
    if result is None:
        result = aggregation.aggregate(method, votes, seed=study.random_seed)
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
