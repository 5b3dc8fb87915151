"""Participants: created on consent, finished (and scored on gold items) after their last trial.

A participant is known only by an opaque random token kept in an httpOnly cookie; nothing else
about them is stored beyond the URL parameters the recruiting platform passes (e.g. PROLIFIC_PID).
"""
import hashlib
import random
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from study.errors import InvalidInput, StudyNotOpen
from study.models import Participant, Study

STANDARD_URL_PARAMETERS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MAX_PARAMETER_LENGTH = 200

_NOT_OPEN_MESSAGES = {
    Study.Status.DRAFT: "This study has not started yet.",
    Study.Status.PAUSED: "This study is paused for the moment. Please try again later.",
    Study.Status.CLOSED: "This study is closed and no longer accepts responses. Thank you for your interest.",
}


def study_require_live(study: Study) -> None:
    """Raise StudyNotOpen (with a message for participants) unless the study is live."""
    if study.status != Study.Status.LIVE:
        raise StudyNotOpen(_NOT_OPEN_MESSAGES.get(study.status, "This study is not open."))


def participant_url_parameter_names(study: Study) -> list[str]:
    """The URL parameters recorded for this study: the Prolific trio plus study.url_parameters."""
    extra = [str(name) for name in (study.url_parameters or []) if str(name).strip()]
    return list(dict.fromkeys([*STANDARD_URL_PARAMETERS, *extra]))


def participant_external_ids(*, study: Study, params: Mapping[str, str]) -> dict[str, str]:
    """Keep only the study's known URL parameters, as short strings (unknown names are ignored)."""
    kept = {}
    for name in participant_url_parameter_names(study):
        value = params.get(name)
        if value:
            kept[name] = str(value)[:MAX_PARAMETER_LENGTH]
    return kept


def user_agent_family(user_agent: str) -> str:
    """Browser family from a User-Agent string: Edge, Chrome, Firefox, Safari or Other."""
    ua = user_agent or ""
    if "Edg/" in ua or "Edge/" in ua or "EdgA/" in ua or "EdgiOS/" in ua:
        return "Edge"
    if "Firefox/" in ua or "FxiOS/" in ua:
        return "Firefox"
    if "Chrome/" in ua or "CriOS/" in ua or "Chromium/" in ua:
        return "Chrome"
    if "Safari/" in ua:
        return "Safari"
    return "Other"


def _label_order(study: Study, token: str) -> list[str]:
    labels = list(study.label_set.labels)
    if study.shuffle_labels:
        seed = hashlib.sha256(f"{study.random_seed}:labels:{token}".encode()).digest()
        random.Random(seed).shuffle(labels)
    return labels


@transaction.atomic
def participant_create(*, study: Study, external_ids: Mapping[str, str], user_agent: str = "") -> Participant:
    """A participant who has just agreed to the consent text, with their button order fixed."""
    study_require_live(study)
    token = secrets.token_urlsafe(32)
    return Participant.objects.create(
        study=study,
        token=token,
        external_ids=participant_external_ids(study=study, params=external_ids),
        user_agent_family=user_agent_family(user_agent),
        label_order=_label_order(study, token),
        consented_at=timezone.now(),
    )


@transaction.atomic
def participant_finish(*, participant: Participant) -> Participant:
    """Mark the participant finished and score their gold items. Idempotent.

    A participant whose gold accuracy is below the study's threshold is excluded: their votes stay
    stored but selectors leave them out of the human distributions and the quota count.
    """
    participant = Participant.objects.select_for_update().select_related("study").get(pk=participant.pk)
    if participant.finished_at is not None:
        return participant
    if participant.assignments.filter(answered_at__isnull=True).exists() or not participant.assignments.exists():
        raise InvalidInput("This participant still has trials to answer.")
    participant.finished_at = timezone.now()
    if participant.gold_answered:
        participant.gold_score = participant.gold_correct / participant.gold_answered
        threshold = participant.study.gold_pass_threshold
        if participant.gold_score < threshold:
            participant.excluded = True
            participant.exclusion_reason = (
                f"Attention checks: {participant.gold_correct} of {participant.gold_answered} correct "
                f"({participant.gold_score:.0%}), below the study's {threshold:.0%}."
            )
    participant.save(update_fields=["finished_at", "gold_score", "excluded", "exclusion_reason"])
    return participant


def study_completion_url(study: Study) -> str:
    """study.completion_url with cc=<completion code> set, keeping its other query parameters; "" if unset."""
    if not study.completion_url:
        return ""
    parts = urlsplit(study.completion_url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "cc"]
    query.append(("cc", study.completion_code))
    return urlunsplit(parts._replace(query=urlencode(query)))
