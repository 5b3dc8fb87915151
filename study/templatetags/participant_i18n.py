"""{{ label|answer_name }}: an answer's display name in the active language (see study.i18n)."""
from django import template

from study.i18n import answer_display_name

register = template.Library()


@register.filter
def answer_name(label: str) -> str:
    return answer_display_name(label)
