"""{% predict_panel study %}: the model/predictions panel that the study page includes."""
from django import template

from study.selectors.label_sets import models_for_label_set, predict_choices
from study.selectors.models import models_runnable_by

register = template.Library()


@register.inclusion_tag("study/models/_predict_panel_body.html", takes_context=True)
def predict_panel(context, study):
    fits = models_for_label_set(label_set=study.label_set, models=models_runnable_by(context["request"].user))
    return {"study": study, **predict_choices(fits),
            "jobs": study.prediction_jobs.select_related("model_version")[:10]}
