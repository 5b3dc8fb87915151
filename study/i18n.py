"""Participant pages in the study's language (Study.language), through Django's translation machinery.

`participant_language` wraps a participant view so everything it renders (templates, messages,
error pages) is in the study's language; the researcher pages stay in the site language. Emotion
names of the standard label sets are translated for display only: the value sent back, stored and
exported is always the label set's own name.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from study.models import Study

# Display names of the standard answers; anything else (a custom label) is shown as written.
ANSWER_NAMES = {
    "Surprise": pgettext_lazy("emotion", "Surprise"),
    "Fear": pgettext_lazy("emotion", "Fear"),
    "Disgust": pgettext_lazy("emotion", "Disgust"),
    "Happiness": pgettext_lazy("emotion", "Happiness"),
    "Sadness": pgettext_lazy("emotion", "Sadness"),
    "Anger": pgettext_lazy("emotion", "Anger"),
    "Neutral": pgettext_lazy("emotion", "Neutral"),
    "Contempt": pgettext_lazy("emotion", "Contempt"),
    "Unknown": pgettext_lazy("answer", "Unknown"),
    "Not a face": pgettext_lazy("answer", "Not a face"),
}
LANGUAGE_NAMES = {"en": _("English"), "de": _("German")}


def answer_display_name(label: str) -> str:
    """The label's name in the active language (standard names only; custom labels unchanged)."""
    name = ANSWER_NAMES.get(label)
    return str(name) if name is not None else label


LANGUAGE_CACHE_SECONDS = 60


def _language_key(slug: str) -> str:
    return f"emostudy:study-language:{slug}"


def study_language(slug: str) -> str:
    """The study's language, cached briefly: every participant request needs it, and the vote path is
    held to 6 queries (study_update forgets it at once; an admin edit shows within a minute)."""
    language = cache.get(_language_key(slug))
    if language is None:
        language = Study.objects.filter(slug=slug).values_list("language", flat=True).first() or ""
        cache.set(_language_key(slug), language, LANGUAGE_CACHE_SECONDS)
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def forget_study_language(slug: str) -> None:
    cache.delete(_language_key(slug))


def participant_language(view):
    """Render the view in the language of the study named by its `slug` argument."""

    @wraps(view)
    def wrapped(request, slug, *args, **kwargs):
        language = study_language(slug)
        with translation.override(language):
            response = view(request, slug, *args, **kwargs)
            render = getattr(response, "render", None)
            if callable(render) and not getattr(response, "is_rendered", True):
                response = render()  # a TemplateResponse must render inside the override
        response.headers.setdefault("Content-Language", language)
        return response

    return wrapped
