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
from study.analysis import aggregation as aggregation_methods
from study.analysis import compare_text, metrics
from study.selectors.access import EDIT, studies_readable_by, user_can
from study.selectors.compare import (
    LABEL_SCOPES,
    aggregated_distributions,
    comparison_data,
    imported_counts,
    lambda_export_summary,
    model_summaries,
    study_headcount,
    vote_sources,
)
from study.selectors.model_figures import figure4_gallery
from study.selectors.studies import domain_warning, study_image_domain
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
    labels = data.labels
    humans = _human_reference(request, data)
    counts = humans["counts"]
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "js"
    min_votes = _int(request.GET.get("min_votes"), 0)  # images without votes yet show their predictions too
    label_filter = request.GET.get("label") if request.GET.get("label") in labels else ""
    focus = next((c for c in data.models if str(c.model.pk) == request.GET.get("model")), None)
    shown_models = [focus] if focus else data.models
    image_domain = study_image_domain(study=study)
    primary = focus or _default_model(data.models, image_domain)

    human = humans["shares"]
    n_votes = counts.sum(1)
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
                        "missing": list(c.missing),
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
    label_scope = request.GET.get("labels") if request.GET.get("labels") in LABEL_SCOPES else "all"
    summaries = model_summaries(data, counts, None if humans["aggregation"] == "raw" else human,
                                others=humans["others"], label_scope=label_scope)
    ceiling = next((row for row in summaries if row.get("ceiling") == "split_half"), None)
    headlines = [_headline(row, ceiling) for row in summaries if row["model_id"] is not None]
    confusion = None
    if primary is not None:
        for row in summaries:
            if row["model_id"] == primary.model.pk:
                confusion = {"labels": row["labels_scored"], "matrix": row["confusion"], "model": primary.model.name}
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
        "definitions": compare_text.METRIC_DEFINITIONS, "can_change": user_can(user=request.user, study=study, need=EDIT),
        "non_emotion_counts": data.non_emotion_counts,  # "Unknown", "Not a face": counted apart
        "humans": humans, "aggregations": AGGREGATIONS,
        "model_provenance": _model_provenance(study, data.models, image_domain),
        "label_scope": label_scope, "label_scopes": LABEL_SCOPES,
        "models_missing": [{"name": c.model.name, "missing": list(c.missing)} for c in data.models if c.missing],
    })


def _headline(row: dict, ceiling: dict | None) -> dict:
    """A model's headline in plain words and, when it lacks labels, the sentence that says so with the other
    label scope's figures; figures over the shared labels are read against the same labels' split-half."""
    ceiling = row.get("ceiling_split_half") or ceiling
    return {"name": row["name"], "text": _with_fraction(compare_text.model_headline(row["name"], row, ceiling), row),
            "coverage": compare_text.label_coverage_note(row["name"], row)}


def _with_fraction(text: str, row: dict) -> str:
    """Add the headline ceiling's fraction: how far the model is from what the truth itself would score."""
    fraction = (row.get("fraction") or {}).get("top1_agreement")
    if fraction is None or not math.isfinite(fraction):
        return text
    sentence = (f"{text[:-1]}; that is {compare_text.percent(fraction)} of the top-1 agreement the true "
                "distributions themselves would reach against these votes (the noise floor).")
    if fraction > 1:
        sentence += (" Above 100% means the model is as close to these votes as the truth would be, within the "
                     "floor's uncertainty (the floor is estimated from the votes): read it as at the ceiling.")
    return sentence


COUNT_AGGREGATIONS = {"raw": aggregation_methods.raw_shares, "majority": aggregation_methods.majority,
                      "ferplus": aggregation_methods.ferplus}
AGGREGATIONS = {
    "raw": "vote shares",
    "majority": "majority",
    "ferplus": "FER+ probability mode",
    "dawid_skene": "Dawid-Skene",
    "glad": "GLAD",
    "mace": "MACE",
}


def _human_reference(request: HttpRequest, data) -> dict:
    """Which humans the page compares with (?humans=live | source-<id> | merged-<id>) and how their votes
    become one distribution per image (?aggregation=...); unknown values fall back to live votes and shares.

    With live votes as the reference, every imported source is also scored against them like a model (live
    crowd vs published labels). Dawid-Skene, GLAD and MACE need each voter's identity, so they apply to the
    live votes; for an imported or merged reference they fall back to vote shares, with a note."""
    sources = {str(source.pk): source for source in vote_sources(study=data.study)}
    choice = request.GET.get("humans") or "live"
    kind, _, source_id = choice.partition("-")
    source = sources.get(source_id) if kind in ("source", "merged") else None
    stimulus_ids = [s["id"] for s in data.stimuli]
    counts, label = data.counts, "live votes"
    if source is not None:
        imported = imported_counts(source=source, stimulus_ids=stimulus_ids, labels=data.labels)
        counts = imported if kind == "source" else data.counts + imported
        label = source.name if kind == "source" else f"live votes + {source.name}"
    else:
        choice = "live"
    aggregation = request.GET.get("aggregation") if request.GET.get("aggregation") in AGGREGATIONS else "raw"
    note = ""
    if aggregation in ("dawid_skene", "glad", "mace") and source is not None:
        note = f"{AGGREGATIONS[aggregation]} needs each voter's identity: shown for the live votes only; vote shares here."
        aggregation = "raw"
    if aggregation in COUNT_AGGREGATIONS:
        shares = COUNT_AGGREGATIONS[aggregation](counts)
    else:
        shares = aggregated_distributions(study=data.study, method=aggregation, stimulus_ids=stimulus_ids,
                                          labels=data.labels)
    others = {}
    if source is None:
        for other in sources.values():
            imported = imported_counts(source=other, stimulus_ids=stimulus_ids, labels=data.labels)
            others[f"{other.name} (imported) vs live votes"] = imported
    options = [("live", "live votes")]
    for pk, other in sources.items():
        options += [(f"source-{pk}", f"{other.name} (imported)"), (f"merged-{pk}", f"live votes + {other.name}")]
    return {"choice": choice, "label": label, "counts": counts, "shares": shares, "aggregation": aggregation,
            "note": note, "options": options, "others": others}


def _default_model(columns, image_domain: str):
    """The model the single-model parts of the page (sort, confusion, uncertainty) show unless one is chosen: one
    trained on images like the study's that predicted the most images; then by name."""
    if not columns:
        return None
    return min(columns, key=lambda c: (bool(domain_warning(model_domain=c.model.training_domain,
                                                           image_domain=image_domain)),
                                       -int(c.has.sum()), c.model.name))


def _model_provenance(study, columns, image_domain: str) -> list[dict]:
    """Each model's training data, and a warning when it differs in kind from this study's images."""
    return [{"name": c.model.name, "training_data": c.model.training_data or "not stated",
             "warning": domain_warning(model_domain=c.model.training_domain, image_domain=image_domain),
             "missing": list(c.missing), "shared_count": len(study.label_set.labels) - len(c.missing)}
            for c in columns]


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
    lambdas = [_figure4_section(c.model) for c in data.models
               if c.model.lambda_export or c.model.figure4_image or c.model.figure4_items]
    return {"by_human": by_human, "by_model": by_model, "lambdas": lambdas,
            "model": primary.model.name if primary else None, "model_names": [c.model.name for c in data.models]}


def _figure4_section(model_version) -> dict:
    """One model's Figure 4: the λ export's extremes (when attached) and its picture gallery (views/model_figures.py)."""
    summary = (lambda_export_summary(export_file=model_version.lambda_export) if model_version.lambda_export
               else {"error": "", "lowest": [], "highest": [], "count": 0, "skipped": 0, "flipped": None})
    return {"model": model_version.name, "model_id": model_version.pk, **summary,
            "figure4": figure4_gallery(model_version=model_version)}


@researcher_required
@require_GET
def export_file(request: HttpRequest, slug: str, name: str) -> StreamingHttpResponse:
    study = _study(request, slug)
    include_test = request.GET.get("include_test") == "1"  # researchers' previews; left out by default
    if name == "all.zip":
        response = StreamingHttpResponse(exports.zip_stream(study, include_test), content_type="application/zip")
    elif name in exports.EXPORT_FILES:
        content_type = "text/markdown; charset=utf-8" if name.endswith(".md") else "text/csv; charset=utf-8"
        response = StreamingHttpResponse(exports.stream(study, name, include_test), content_type=content_type)
    else:
        raise Http404("no such export")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{name}"'
    return response
