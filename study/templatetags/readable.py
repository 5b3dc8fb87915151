"""{{ value|metric:3 }}: a number with fixed decimals, or "not enough votes" where it is missing or NaN (never `nan`)."""
import math

from django import template
from django.template.defaultfilters import floatformat
from django.utils.html import format_html

register = template.Library()


@register.filter
def metric(value, digits=3):
    if value is None or value == "" or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return format_html('<span class="not-enough" title="{}">not enough votes</span>',
                           "too few images with votes, or no variation to measure")
    return floatformat(value, digits)


@register.filter
def plain(value):
    """A stored value for a facts table: floats rounded to 4 decimals, None/NaN as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return floatformat(value, -4)
    return value
