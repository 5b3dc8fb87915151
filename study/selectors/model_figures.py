"""Reads for a model's training-run figures (services/model_figures.py stores them): who may see them, and
the Figure 4 gallery grouped as the page shows it.

Who: whoever may see the model (its owner, those it is shared with, everyone when it is public: the
models page's rule) and whoever may read a study the model has predictions in (the comparison view's rule:
the study's owner, collaborators, and every researcher for a study shared read-only with all).
"""
from __future__ import annotations

from study.models import ModelVersion, Prediction
from study.selectors.access import studies_readable_by
from study.selectors.models import models_visible_to


def model_figures_readable(*, user, pk: int) -> ModelVersion | None:
    """The model `pk` if `user` may see its figures, else None (the view answers 404 either way)."""
    model_version = models_visible_to(user).filter(pk=pk).first()
    if model_version is not None:
        return model_version
    if Prediction.objects.filter(model_version_id=pk, stimulus__study__in=studies_readable_by(user)).exists():
        return ModelVersion.objects.filter(pk=pk).first()
    return None


def figure4_gallery(*, model_version: ModelVersion) -> dict:
    """{'has_image', 'has_gallery', 'by_class' (a column per given label, the paper's layout),
    'groups': [{'name', 'items': [{n, given_label, lambda, flipped, original_label, alt}]}], 'count', 'flipped'}:
    the gallery in its stored order, one group per class column (or lowest/highest)."""
    groups: dict[str, list[dict]] = {}
    for n, item in enumerate(model_version.figure4_items or []):
        flipped = bool(item.get("flipped"))
        alt = f"Training image, given label {item.get('given_label') or 'unknown'}, λ {float(item['lambda']):.3f}"
        if flipped:
            alt += f"; label flipped on purpose, true label {item.get('original_label') or 'unknown'}"
        groups.setdefault(item.get("group") or "?", []).append(
            {"n": n, "given_label": item.get("given_label", ""), "lambda": float(item["lambda"]), "flipped": flipped,
             "original_label": item.get("original_label", ""), "alt": alt})
    items = model_version.figure4_items or []
    by_class = all(row["given_label"] == name for name, rows in groups.items() for row in rows)
    return {"has_image": bool(model_version.figure4_image), "has_gallery": bool(items), "by_class": by_class,
            "groups": [{"name": name, "items": rows} for name, rows in groups.items()],
            "count": len(items), "flipped": sum(bool(item.get("flipped")) for item in items)}


def figure4_item(*, model_version: ModelVersion, n: int) -> dict | None:
    items = model_version.figure4_items or []
    return items[n] if 0 <= n < len(items) else None
