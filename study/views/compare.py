"""The comparison view (the ULDL paper's Figure 3 as a page) and its export downloads.

Thin: study.selectors.compare fetches everything in a constant number of queries, study.analysis.metrics computes the
per-image and study-level numbers in numpy, the templates and static/study/compare/compare.js draw them.
"""
from __future__ import annotations

import math

import numpy as np
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from study import exports
from study.analysis import compare_text, metrics
from study.selectors.compare import comparison_data, lambda_export_summary, model_summaries, study_headcount
from study.selectors.studies import studies_readable_by
from study.views.access import researcher_required

PER_PAGE = 24
SORTS = {
    "js": "disagreement (Jensen–Shannon, highest first)",
    "ambiguity": "human ambiguity (entropy, highest first)",
    "confidence": "model confidence (lowest first)",
}


def _study(request: HttpRequest, slug: str):
    study = studies_readable_by(request.user).select_related("label_set").filter(slug=slug).first()
    if study is None:
        raise Http404("no such study")
    return study


def _int(value, default: int, low: int = 0) -> int:
    try:
        return max(low, int(value))
    except (TypeError, ValueError):
        return default


def _finite(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


@researcher_required
@require_GET
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(request, slug)
    data = comparison_data(study=study)
    labels, counts = data.labels, data.counts
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "js"
    min_votes = _int(request.GET.get("min_votes"), 0)  # images without votes yet show their predictions too
    label_filter = request.GET.get("label") if request.GET.get("label") in labels else ""
    focus = next((c for c in data.models if str(c.model.pk) == request.GET.get("model")), None)
    shown_models = [focus] if focus else data.models
    primary = focus or (data.models[0] if data.models else None)

    human = metrics.distribution(counts)
    n_votes = data.n_votes
    with np.errstate(invalid="ignore"):
        human_entropy = metrics.normalised_entropy(np.nan_to_num(human))
    majority = metrics.majority_mask(np.nan_to_num(human))
    keep = n_votes >= max(min_votes, 0)
    if label_filter:
        keep &= majority[:, labels.index(label_filter)]
    per_model = {c.model.pk: _model_columns(c, human, n_votes) for c in data.models}
    if primary is not None:
        js, match, confidence, model_entropy = (per_model[primary.model.pk][k] for k in
                                                ("js", "match", "confidence", "entropy"))
    else:
        js = match = confidence = model_entropy = np.full(len(counts), np.nan)
    key = {"js": -np.nan_to_num(js, nan=-1), "ambiguity": -human_entropy,
           "confidence": np.nan_to_num(confidence, nan=2.0)}[sort]
    order = [i for i in np.argsort(key, kind="stable") if keep[i]]
    page_count = max(1, math.ceil(len(order) / PER_PAGE))
    page = min(_int(request.GET.get("page"), 1, low=1), page_count)
    cards, charts = [], {}
    shown = order[(page - 1) * PER_PAGE: page * PER_PAGE]
    low, high = metrics.dirichlet_interval(counts[shown])  # intervals only for the cards on this page
    for row, i in enumerate(shown):
        stimulus = data.stimuli[i]
        ident = str(stimulus["public_id"])
        cards.append({
            "id": ident, "name": stimulus["original_name"], "n": int(n_votes[i]), "ground_truth": stimulus["ground_truth"],
            "image_url": reverse("study:researcher-stimulus-image", args=[study.slug, stimulus["public_id"]]),
            "js": _finite(float(js[i])), "match": bool(match[i]) if primary is not None and not np.isnan(js[i]) else None,
            "entropy": _finite(float(human_entropy[i])) if n_votes[i] else None,
            "majority": [labels[k] for k in np.flatnonzero(majority[i])],
            "models": [{"name": c.model.name, "js": _finite(float(per_model[c.model.pk]["js"][i])),
                        "match": bool(per_model[c.model.pk]["match"][i]) if n_votes[i] else None,
                        "top": labels[int(np.argmax(c.probs[i]))]}
                       for c in shown_models if c.has[i]],
        })
        charts[ident] = {
            "labels": labels, "n": int(n_votes[i]),
            "human": [None if np.isnan(v) else round(float(v), 4) for v in human[i]],
            "low": [round(float(v), 4) for v in low[row]], "high": [round(float(v), 4) for v in high[row]],
            "models": [{"name": c.model.name, "probs": [round(float(v), 4) for v in c.probs[i]]}
                       for c in shown_models if c.has[i]],
        }
    summaries = model_summaries(data)
    ceiling = next((row for row in summaries if row["model_id"] is None), None)
    headlines = [{"name": row["name"], "text": compare_text.model_headline(row["name"], row, ceiling)}
                 for row in summaries if row["model_id"] is not None]
    confusion = None
    if primary is not None:
        for row in summaries:
            if row["model_id"] == primary.model.pk:
                confusion = {"labels": labels, "matrix": row["confusion"], "model": primary.model.name}
    uncertainty = _uncertainty(data, human_entropy, n_votes, primary, model_entropy) \
        if request.GET.get("tab") == "uncertainty" else None
    return render(request, "study/compare/compare.html", {
        "study": study, "labels": labels, "headcount": study_headcount(study=study), "summaries": summaries,
        "cards": cards, "charts": charts, "confusion": confusion, "sorts": SORTS, "sort": sort,
        "models": data.models, "focus": focus, "label_filter": label_filter, "min_votes": min_votes,
        "page": page, "page_count": page_count, "matching": len(order), "primary": primary,
        "tab": request.GET.get("tab") or "images",
        "uncertainty": uncertainty, "exports": exports.EXPORT_FILES, "headlines": headlines,
        "few_votes": compare_text.few_votes_warning(n_votes), "enough_votes": compare_text.ENOUGH_VOTES,
        "definitions": compare_text.METRIC_DEFINITIONS, "can_change": study.owner_id == request.user.pk
        or request.user.is_superuser,
    })


def _model_columns(column, human: np.ndarray, n_votes: np.ndarray) -> dict[str, np.ndarray]:
    """One model's per-image JS, top-1 match, confidence and ambiguity (NaN/False where it or the humans
    have nothing for the image), for all images at once."""
    p = np.nan_to_num(column.probs, nan=1.0 / column.probs.shape[1])
    both = column.has & (n_votes > 0)
    h = np.nan_to_num(human)
    return {"js": np.where(both, metrics.js_divergence(h, p), np.nan), "match": metrics.top1_match(h, p) & both,
            "confidence": np.where(column.has, p.max(1), np.nan),
            "entropy": np.where(column.has, metrics.normalised_entropy(p), np.nan)}


def _uncertainty(data, human_entropy, n_votes, primary, model_entropy, limit: int = 30) -> dict:
    def row(i: int, **values) -> dict:
        stimulus = data.stimuli[i]
        return {"name": stimulus["original_name"], "ground_truth": stimulus["ground_truth"],
                "image_url": reverse("study:researcher-stimulus-image", args=[data.study.slug, stimulus["public_id"]]),
                **values}

    labels = data.labels
    majority = metrics.majority_mask(np.nan_to_num(metrics.distribution(data.counts)))

    def crowd_top(i: int) -> str:
        return " / ".join(labels[k] for k in np.flatnonzero(majority[i])) if n_votes[i] else "no votes yet"

    def model_tops(i: int) -> list[dict]:
        """Each model's top label beside its ambiguity (normalised entropy) on image i."""
        return [{"name": c.model.name, "top": labels[int(np.argmax(c.probs[i]))],
                 "ambiguity": float(metrics.normalised_entropy(c.probs[i]))} for c in data.models if c.has[i]]

    voted = np.flatnonzero(n_votes > 0)
    by_human = [row(i, entropy=float(human_entropy[i]), n=int(n_votes[i]), crowd_top=crowd_top(i),
                    models=model_tops(i))
                for i in voted[np.argsort(-human_entropy[voted], kind="stable")][:limit]]
    by_model = []
    if primary is not None:
        has = np.flatnonzero(primary.has)
        by_model = [row(i, ambiguity=float(model_entropy[i]), confidence=float(primary.probs[i].max()),
                        top=labels[int(np.argmax(primary.probs[i]))], crowd_top=crowd_top(i))
                    for i in has[np.argsort(-model_entropy[has], kind="stable")][:limit]]
    lambdas = [{"model": c.model.name, **lambda_export_summary(export_file=c.model.lambda_export)}
               for c in data.models if c.model.lambda_export]
    return {"by_human": by_human, "by_model": by_model, "lambdas": lambdas,
            "model": primary.model.name if primary else None, "model_names": [c.model.name for c in data.models]}


@researcher_required
@require_GET
def export_file(request: HttpRequest, slug: str, name: str) -> StreamingHttpResponse:
    study = _study(request, slug)
    if name == "all.zip":
        response = StreamingHttpResponse(exports.zip_stream(study), content_type="application/zip")
    elif name in exports.EXPORT_FILES:
        content_type = "text/markdown; charset=utf-8" if name.endswith(".md") else "text/csv; charset=utf-8"
        response = StreamingHttpResponse(exports.stream(study, name), content_type=content_type)
    else:
        raise Http404("no such export")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{name}"'
    return response
