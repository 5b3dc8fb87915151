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
from django.utils.translation import gettext_lazy as _

from study.errors import InvalidInput, StudyNotOpen, TooManyRequests
from study.models import Participant, Study

STANDARD_URL_PARAMETERS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MAX_PARAMETER_LENGTH = 200

_NOT_OPEN_MESSAGES = {
    Study.Status.DRAFT: _("This study has not started yet."),
    Study.Status.PAUSED: _("This study is paused for the moment. Please try again later."),
    Study.Status.CLOSED: _("This study is closed and no longer accepts responses. Thank you for your interest."),
}
TEST_REASON = "Test participant (a researcher's preview); left out of the data."


def study_require_live(study: Study) -> None:
    """Raise StudyNotOpen (with a message for participants) unless the study is live."""
    if study.status != Study.Status.LIVE:
        raise StudyNotOpen(str(_NOT_OPEN_MESSAGES.get(study.status, _("This study is not open."))))


def participant_require_can_continue(participant: Participant, study: Study | None = None) -> None:
    """Raise StudyNotOpen unless this participant may go on answering.

    Live studies: everyone. Paused studies: those who already started, when the study lets them
    finish (study.finish_when_paused). Test participants (a researcher's preview): always.
    """
    study = study or participant.study
    if not participant_may_continue(is_test=participant.is_test, study_status=study.status,
                                    finish_when_paused=study.finish_when_paused):
        study_require_live(study)


def participant_may_continue(*, is_test: bool, study_status: str, finish_when_paused: bool) -> bool:
    """The rule of participant_require_can_continue on plain values (the raw-SQL vote path reads them so)."""
    return is_test or study_status == Study.Status.LIVE or (study_status == Study.Status.PAUSED and finish_when_paused)


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


def device_type(user_agent: str) -> str:
    """phone, tablet or desktop from a User-Agent string (iPhone, Android phones and tablets, iPad)."""
    ua = user_agent or ""
    if "iPad" in ua or ("Android" in ua and "Mobile" not in ua) or "Tablet" in ua:
        return "tablet"
    if "iPhone" in ua or "iPod" in ua or "Mobile" in ua or "Windows Phone" in ua:
        return "phone"
    return "desktop" if ua else ""


def _label_order(study: Study, token: str) -> list[str]:
    """The emotions (shuffled once per participant when the study asks), then the non-emotion answers."""
    labels = list(study.label_set.labels)
    if study.shuffle_labels:
        seed = hashlib.sha256(f"{study.random_seed}:labels:{token}".encode()).digest()
        random.Random(seed).shuffle(labels)
    return [*labels, *study.label_set.non_emotion_labels]


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
                       is_test: bool = False, client_address: str | None = None) -> Participant:
    """A participant who has just agreed to the consent text, with their button order fixed.

    A test participant (is_test, a researcher's preview) may take any study, draft included; it is
    stored excluded, so every count, distribution and metric leaves it out without special cases.
    TooManyRequests when this client address started PARTICIPANT_STARTS_PER_CLIENT sessions of the study
    within the window (scripted consent + Start sequences); a researcher's preview is not limited.
    """
    client = client_hash(client_address)
    if not is_test:
        study_require_live(study)
        _require_start_allowance(study, client)
    token = secrets.token_urlsafe(32)
    return Participant.objects.create(
        study=study,
        client_hash=client,
        token=token,
        external_ids=participant_external_ids(study=study, params=external_ids),
        user_agent_family=user_agent_family(user_agent),
        device_type=device_type(user_agent),
        label_order=_label_order(study, token),
        consented_at=timezone.now(),
        is_test=is_test,
        excluded=is_test,
        exclusion_reason=TEST_REASON if is_test else "",
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
        participant.gold_score, reason = participant_gold_verdict(
            gold_correct=participant.gold_correct, gold_answered=participant.gold_answered,
            threshold=participant.study.gold_pass_threshold, is_test=participant.is_test)
        if reason:
            participant.excluded, participant.exclusion_reason = True, reason
    participant.save(update_fields=["finished_at", "gold_score", "excluded", "exclusion_reason"])
    return participant


def participant_gold_verdict(*, gold_correct: int, gold_answered: int, threshold: float,
                             is_test: bool) -> tuple[float, str]:
    """A finishing participant's gold score (gold_answered > 0) and, when it is below the study's threshold, why
    they are excluded ("" when they are kept; a researcher's preview is always kept). The one rule of both finishes:
    participant_finish and the vote's hot path (study.services.votes.vote_submit)."""
    score = gold_correct / gold_answered
    if score >= threshold or is_test:
        return score, ""
    return score, (f"Attention checks: {gold_correct} of {gold_answered} correct ({score:.0%}), "
                   f"below the study's {threshold:.0%}.")


FINISHED, SCREENED_OUT, NO_CONSENT = "finished", "screened_out", "no_consent"


def participant_outcome(participant: Participant) -> str:
    """finished, or screened_out when the attention checks excluded them (test participants: finished)."""
    if participant.excluded and not participant.is_test and participant.gold_score is not None \
            and participant.gold_score < participant.study.gold_pass_threshold:
        return SCREENED_OUT
    return FINISHED


def study_outcome_code(study: Study, outcome: str) -> str:
    """The completion code for an outcome: finished, screened_out or no_consent (each set per study)."""
    return {FINISHED: study.completion_code, SCREENED_OUT: study.screened_out_code,
            NO_CONSENT: study.no_consent_code}[outcome]


def study_completion_url(study: Study, code: str | None = None) -> str:
    """study.completion_url with cc=<code> set (the finished code by default), keeping its other parameters.

    "" when the study has no completion URL or the code is blank.
    """
    code = study.completion_code if code is None else code
    if not study.completion_url or not code:
        return ""
    parts = urlsplit(study.completion_url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "cc"]
    query.append(("cc", code))
    return urlunsplit(parts._replace(query=urlencode(query)))
