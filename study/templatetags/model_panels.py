"""{% predict_panel study %}: the model/predictions panel that the study page includes."""
from django import template

from study.selectors.label_sets import models_for_label_set

register = template.Library()


@register.inclusion_tag("study/models/_predict_panel_body.html")
def predict_panel(study):
    fits = models_for_label_set(label_set=study.label_set)
    return {"study": study, "models": [fit.model for fit in fits if fit.serves],
            "unfit_models": [fit for fit in fits if not fit.serves],
            "jobs": study.prediction_jobs.select_related("model_version")[:10]}
