"""Participants: created on consent, finished (and scored on gold items) after their last trial.

A participant is known only by an opaque random token kept in an httpOnly cookie; nothing else
about them is stored beyond the URL parameters the recruiting platform passes (e.g. PROLIFIC_PID) and a
keyed hash of their address, used only to rate-limit new sessions.
"""
import hashlib
import hmac
import random
import secrets
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from study.errors import InvalidInput, StudyNotOpen, TooManyRequests
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


def client_hash(address: str | None) -> str:
    """A keyed, truncated hash of the client address: enough to count one client's sessions, not to name it."""
    if not address:
        return ""
    return hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()[:16]


def _require_start_allowance(study: Study, client: str) -> None:
    limit = settings.PARTICIPANT_STARTS_PER_CLIENT
    if not client or limit <= 0:
        return
    window = settings.PARTICIPANT_START_WINDOW_SECONDS
    since = timezone.now() - timedelta(seconds=window)
    if Participant.objects.filter(study=study, client_hash=client, started_at__gte=since).count() >= limit:
        raise TooManyRequests(f"Too many new sessions from your network in the last {window // 60} minutes. "
                              "Please try again a little later.")


@transaction.atomic
def participant_create(*, study: Study, external_ids: Mapping[str, str], user_agent: str = "",
                       client_address: str | None = None) -> Participant:
    """A participant who has just agreed to the consent text, with their button order fixed.

    TooManyRequests when this client address started PARTICIPANT_STARTS_PER_CLIENT sessions of the study
    within the window (scripted consent + Start sequences).
    """
    study_require_live(study)
    client = client_hash(client_address)
    _require_start_allowance(study, client)
    token = secrets.token_urlsafe(32)
    return Participant.objects.create(
        study=study,
        client_hash=client,
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
