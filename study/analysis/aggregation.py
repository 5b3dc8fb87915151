"""From votes to one distribution per image, several ways, and how good each voter looks.

Votes arrive as parallel arrays: task (V,) image row in [0, N), worker (V,) any hashable id, label (V,)
label index in [0, K). Every method returns (N, K) rows that sum to 1, NaN rows for images without votes.

- raw       the vote shares, counts / n: what the crowd perceives (the default, and what ceilings use).
- majority  the label(s) with the most votes; a tie shares the mass equally among the tied labels.
- ferplus   FER+-style "probability" mode (Barsoum et al. 2016): labels chosen by a single voter are dropped
            as outliers, then the most-voted labels are kept (ties together, at most 3) until they cover at
            least 75% of the remaining votes, renormalised. If dropping single votes would leave nothing
            (every voter disagreed, common with a few votes) or the kept labels cover no more than half of
            the votes, the raw shares are returned: sharpening a face nobody agrees on would invent a consensus.
            FER+ instead discards such faces as "unknown"; a study cannot drop its own images.
- dawid_skene, glad, mace  from crowd-kit: each models voters' reliability and returns the posterior of a
            single *true label* per image. Their rows are near one-hot: they answer "which label is right"
            (useful against spammers), not "what do people perceive", so compare them with models' top-1,
            not with the shares.

Worker quality: leave-one-out agreement (the share of the *other* voters on the same image who chose the
same label, averaged over the worker's votes), Dawid-Skene confusion matrix and skill (the expected accuracy
sum_k prior_k P(says k | true k)), agreement with a model (mean probability the model gives the worker's
label, and how often it is the model's argmax), and a response-time profile.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["METHODS", "COUNT_METHODS", "Votes", "aggregate", "raw_shares", "majority", "ferplus",
           "leave_one_out_agreement", "dawid_skene_quality", "model_agreement", "response_time_profile"]

COUNT_METHODS = ("raw", "majority", "ferplus")
METHODS = (*COUNT_METHODS, "dawid_skene", "glad", "mace")
FERPLUS_COVERAGE = 0.75
FERPLUS_MAX_LABELS = 3


@dataclass(frozen=True)
class Votes:
    """Long-format votes: one entry per (image row, worker, label index)."""

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    n_tasks: int
    n_labels: int

    @classmethod
    def from_lists(cls, task, worker, label, *, n_tasks: int, n_labels: int) -> Votes:
        return cls(np.asarray(task, dtype=np.int64), np.asarray(worker), np.asarray(label, dtype=np.int64),
                   n_tasks, n_labels)

    def counts(self) -> np.ndarray:
        """(N, K) vote counts."""
        flat = np.bincount(self.task * self.n_labels + self.label, minlength=self.n_tasks * self.n_labels)
        return flat.reshape(self.n_tasks, self.n_labels).astype(np.float64)


def _normalise(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weights / np.where(total > 0, total, 1), np.nan)


def raw_shares(counts: np.ndarray) -> np.ndarray:
    return _normalise(np.asarray(counts, dtype=np.float64))


def majority(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    top = (counts == counts.max(-1, keepdims=True)) & (counts > 0)
    return _normalise(top.astype(np.float64))


def _ferplus_row(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    kept = np.where(counts > 1, counts, 0.0)
    remaining = kept.sum()
    if remaining == 0:
        return counts / total
    chosen = np.zeros_like(counts, dtype=bool)
    covered = 0.0
    for value in sorted(set(kept[kept > 0]), reverse=True):
        tied = kept == value
        if chosen.any() and chosen.sum() + tied.sum() > FERPLUS_MAX_LABELS:
            break
        chosen |= tied
        covered += kept[tied].sum()
        if covered >= FERPLUS_COVERAGE * remaining:
            break
    if covered <= 0.5 * total:
        return counts / total
    return np.where(chosen, kept, 0.0) / covered


def ferplus(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    out = np.full(counts.shape, np.nan)
    for row in np.flatnonzero(counts.sum(1) > 0):
        out[row] = _ferplus_row(counts[row])
    return out


def _frame(votes: Votes):
    import pandas as pd  # only the crowd-kit methods need pandas

    return pd.DataFrame({"task": votes.task, "worker": votes.worker, "label": votes.label})


def import_crowd_kit() -> None:
    """Import crowd-kit (and pandas, scikit-learn, nltk behind it) now. It costs seconds of CPU, which the first
    participants page or crowd-model comparison would otherwise pay: server processes call this at start
    (gunicorn's master before it forks, `make run`'s web server in a background thread)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crowdkit.aggregation  # noqa: F401
        import pandas  # noqa: F401


def _model_probas(method: str, votes: Votes, seed: int):
    """Fit a crowd-kit model. Imported here: crowd-kit takes seconds to import (scikit-learn, nltk), and
    only these methods need it. GLAD and MACE iterate scipy optimisers, so their iterations are capped
    (measured: 500 images x 9 votes, GLAD 30 iterations ~6 s, MACE 2 restarts x 30 iterations ~6 s on
    one loaded core; Dawid-Skene converges in well under a second)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crowd-kit 1.4.2 uses pandas' deprecated inplace= (Pandas4Warning)
        from crowdkit.aggregation import GLAD, MACE, DawidSkene

        if method == "dawid_skene":
            model = DawidSkene(n_iter=100)
        elif method == "glad":
            model = GLAD(n_iter=30)
        else:
            model = MACE(n_iter=30, n_restarts=2, random_state=seed)
        model.fit(_frame(votes))
    return model


def _probas_to_array(probas, votes: Votes) -> np.ndarray:
    out = np.full((votes.n_tasks, votes.n_labels), np.nan)
    table = probas.reindex(columns=range(votes.n_labels), fill_value=0.0)
    out[table.index.to_numpy(dtype=np.int64)] = _normalise(table.to_numpy(dtype=np.float64))
    return out


def _key(worker):
    """A plain Python id for a numpy scalar (JSON- and ORM-friendly)."""
    return worker.item() if hasattr(worker, "item") else worker


def aggregate(method: str, votes: Votes, seed: int = 0) -> np.ndarray:
    """(N, K) distributions by `method` (module docstring); ValueError for an unknown method."""
    if method not in METHODS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
    counts = votes.counts()
    if method == "raw":
        return raw_shares(counts)
    if method == "majority":
        return majority(counts)
    if method == "ferplus":
        return ferplus(counts)
    if len(votes.task) == 0:
        return np.full(counts.shape, np.nan)
    return _probas_to_array(_model_probas(method, votes, seed).probas_, votes)


def _workers(votes: Votes) -> tuple[np.ndarray, np.ndarray]:
    names, index = np.unique(votes.worker, return_inverse=True)
    return names, index


def leave_one_out_agreement(votes: Votes) -> dict:
    """worker -> mean share of the other voters on the same image who chose the same label (None when the
    worker never shared an image with anyone)."""
    counts = votes.counts()
    others = counts.sum(1)[votes.task] - 1
    same = counts[votes.task, votes.label] - 1
    names, index = _workers(votes)
    shared = others > 0
    share = np.where(shared, same / np.where(shared, others, 1), 0.0)
    sums = np.bincount(index, weights=share, minlength=len(names))
    used = np.bincount(index, weights=shared.astype(np.float64), minlength=len(names))
    return {_key(name): (float(sums[i] / used[i]) if used[i] else None) for i, name in enumerate(names)}


def dawid_skene_quality(votes: Votes) -> dict:
    """worker -> {"confusion": (K, K) P(says column | true row) as lists, "skill": expected accuracy}."""
    if len(votes.task) == 0:
        return {}
    model = _model_probas("dawid_skene", votes, 0)
    k = votes.n_labels
    prior = model.priors_.reindex(range(k), fill_value=0.0).to_numpy(dtype=np.float64)
    errors = model.errors_
    out = {}
    for worker in np.unique(votes.worker):
        table = errors.loc[worker].reindex(index=range(k), columns=range(k), fill_value=0.0)
        confusion = table.to_numpy(dtype=np.float64).T  # rows true label, columns what the worker says
        out[_key(worker)] = {
            "confusion": confusion.tolist(), "skill": float(prior @ np.diag(confusion))}
    return out


def model_agreement(votes: Votes, probs: np.ndarray) -> dict:
    """worker -> {"probability": mean model probability of the worker's labels, "top1": share of votes that
    are the model's argmax, "n": votes on images the model predicted}."""
    probs = np.asarray(probs, dtype=np.float64)
    has = ~np.isnan(probs).any(1)[votes.task]
    names, index = _workers(votes)
    given = np.where(has, np.nan_to_num(probs)[votes.task, votes.label], 0.0)
    top = np.where(has, np.nan_to_num(probs).argmax(1)[votes.task] == votes.label, False)
    n = np.bincount(index, weights=has.astype(np.float64), minlength=len(names))
    p = np.bincount(index, weights=given, minlength=len(names))
    t = np.bincount(index, weights=top.astype(np.float64), minlength=len(names))
    return {_key(name): ({"probability": float(p[i] / n[i]), "top1": float(t[i] / n[i]), "n": int(n[i])} if n[i]
                   else {"probability": None, "top1": None, "n": 0}) for i, name in enumerate(names)}


def response_time_profile(workers: np.ndarray, response_ms: np.ndarray, fast_ms: int = 500) -> dict:
    """worker -> median, quartiles and the share of answers faster than `fast_ms` (too fast to have looked)."""
    workers, response_ms = np.asarray(workers), np.asarray(response_ms, dtype=np.float64)
    out = {}
    for worker in np.unique(workers):
        times = response_ms[(workers == worker) & np.isfinite(response_ms)]
        key = _key(worker)
        if times.size == 0:
            out[key] = {"median": None, "q1": None, "q3": None, "fast_share": None, "n": 0}
            continue
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        out[key] = {"median": float(median), "q1": float(q1), "q3": float(q3),
                    "fast_share": float((times < fast_ms).mean()), "n": int(times.size)}
    return out
