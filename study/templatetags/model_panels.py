"""{% predict_panel study %}: the model/predictions panel that the study page includes."""
from django import template

from study.models import ModelVersion

register = template.Library()


@register.inclusion_tag("study/models/_predict_panel_body.html")
def predict_panel(study):
    return {"study": study, "models": ModelVersion.objects.filter(status=ModelVersion.Status.VALID),
            "jobs": study.prediction_jobs.select_related("model_version")[:10]}
