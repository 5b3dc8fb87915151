"""Participant pages: /s/<slug>/ → consent → instructions → trials → done. Thin: services do the work.

Every write is a POST with CSRF protection and a redirect after it (PRG), so reload and the back
button only ever re-read. The trial form works without JavaScript; static/study/participant/trial.js adds keys 1–N,
the response time, double-submit protection and preloading. The vote endpoint also answers JSON when
asked (Accept: application/json), for scripted clients.
"""
import json
import time
import uuid
from functools import wraps

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from study.errors import DomainError, InvalidInput, InvalidResponseTime, NotAssigned, StudyFull, StudyNotOpen
from study.i18n import participant_language
from study.models import Participant, Stimulus, Study
from study.selectors.access import EDIT, study_check_access
from study.selectors.participants import (
    participant_cookie_name,
    participant_for_page,
    participant_from_cookies,
    participant_progress,
    participant_trial_state,
    study_is_full_recently,
    study_waiting_on_holds,
)
from study.services.assignments import FULL_MESSAGE, HELD_MESSAGE, assignment_allocate
from study.services.label_sets import label_set_keys
from study.services.participants import (
    NO_CONSENT,
    participant_create,
    participant_external_ids,
    participant_finish,
    participant_outcome,
    participant_require_can_continue,
    study_completion_url,
    study_outcome_code,
    study_require_live,
)
from study.services.votes import MAX_RESPONSE_MS, vote_record, vote_submit
from study.views.images import stimulus_file_response
from study.views.landing import DEMO_SLUG
from webapp.auth import client_ip

PARAM_PREFIX = "p_"  # consent-form hidden inputs carrying the URL parameters
SHOWN_SALT = "emostudy.trial-shown"


# --- helpers -------------------------------------------------------------------------------------


def _study(slug: str) -> Study:
    return get_object_or_404(Study.objects.select_related("label_set"), slug=slug)


def _participant(request: HttpRequest, study: Study) -> Participant | None:
    return participant_from_cookies(study=study, cookies=request.COOKIES)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json"


def _url(name: str, study: Study) -> str:
    return reverse(f"study:participant-{name}", args=[study.slug])


def _next_step(study: Study, participant: Participant) -> str:
    """Where this participant should be now: instructions, the next trial, or the finish page."""
    progress = participant_progress(participant=participant)
    if progress.total == 0:
        return _url("instructions", study)
    return _url("done" if progress.done else "trial", study)


def _message(request: HttpRequest, study: Study | None, title: str, message: str, status: int = 200) -> HttpResponse:
    return render(
        request, "study/participant/message.html", {"study": study, "title": title, "message": str(message)},
        status=status,
    )


def _unavailable(request: HttpRequest, study: Study, error: DomainError) -> HttpResponse:
    """Closed, paused, draft or full: a clear page (HTTP 200), or 409 JSON for scripted clients."""
    if _wants_json(request):
        return JsonResponse({"error": error.code, "message": str(error.message)}, status=error.status_code)
    title = _("This study is full") if isinstance(error, StudyFull) else _("This study is not open")
    return _message(request, study, title, error.message)


def _error(request: HttpRequest, study: Study, error: DomainError) -> HttpResponse:
    if isinstance(error, (StudyNotOpen, StudyFull)):
        return _unavailable(request, study, error)
    if _wants_json(request):
        return JsonResponse({"error": error.code, "message": str(error.message)}, status=error.status_code)
    return _message(request, study, _("Something is not right"), error.message, status=error.status_code)


def _open_for_newcomers(study: Study) -> DomainError | None:
    try:
        study_require_live(study)
    except StudyNotOpen as error:
        return error
    if not study_is_full_recently(study=study):
        return None
    return StudyFull(str(HELD_MESSAGE if study_waiting_on_holds(study=study) else FULL_MESSAGE))


def _choices(study: Study, participant: Participant) -> list[dict]:
    """The answer buttons in this participant's order, each with its key and whether it is an emotion."""
    answers = study.label_set.answers
    key_of = dict(zip(answers, label_set_keys(study.label_set), strict=True))
    others = set(study.label_set.non_emotion_labels)
    order = [label for label in (participant.label_order or answers) if label in key_of]
    order += [answer for answer in answers if answer not in order]  # answers the set gained after consent
    return [{"label": label, "key": key_of[label], "non_emotion": label in others} for label in order]


def _is_touch(participant: Participant) -> bool:
    return participant.device_type in ("phone", "tablet")


def _preview_requested(request: HttpRequest, study: Study) -> bool:
    """?preview=1 (or a consent form posted from it) by a signed-in researcher who may edit the study."""
    if request.GET.get("preview") != "1" and request.POST.get("preview") != "1":
        return False
    try:
        study_check_access(user=request.user, study=study, need=EDIT)
    except DomainError:
        return False
    return True


def _joined(view):
    """For pages after consent: pass the study and the browser's participant; a stranger goes to the study link."""
    @wraps(view)
    @participant_language
    def wrapper(request: HttpRequest, slug: str) -> HttpResponse:
        study = _study(slug)
        participant = _participant(request, study)
        if participant is None:
            return redirect(_url("entry", study))
        return view(request, study, participant)

    return wrapper


def _resume(request: HttpRequest, study: Study) -> HttpResponse | None:
    """A returning participant (the browser sends their cookie) goes on where they left off."""
    participant = _participant(request, study)
    return redirect(_next_step(study, participant)) if participant is not None else None


def _closed_to_newcomers(request: HttpRequest, study: Study) -> HttpResponse | None:
    """The page a newcomer sees when the study is not live or already full; None when they may join.

    A researcher's preview (see _preview_requested) is never turned away: it makes a test participant.
    """
    if _preview_requested(request, study):
        return None
    error = _open_for_newcomers(study)
    return _unavailable(request, study, error) if error is not None else None


def _may_continue(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse | None:
    """The "not open" page unless this participant may go on (live; paused and allowed to finish; a test run)."""
    try:
        participant_require_can_continue(participant, study)
    except StudyNotOpen as error:
        return _unavailable(request, study, error)
    return None


# --- pages ---------------------------------------------------------------------------------------


@never_cache
@require_GET
@participant_language
def participant_entry(request: HttpRequest, slug: str) -> HttpResponse:
    """The study link. Returning participants resume; newcomers see the consent text.

    ?preview=1 from a researcher who may edit the study shows the consent page in any status (a draft
    included); agreeing then makes a test participant (see participant_consent).
    """
    study = _study(slug)
    if (early := _resume(request, study) or _closed_to_newcomers(request, study)) is not None:
        return early
    params = participant_external_ids(study=study, params=request.GET)
    hidden = [(f"{PARAM_PREFIX}{name}", value) for name, value in params.items()]
    return render(request, "study/participant/consent.html",
                  {"study": study, "hidden_params": hidden, "preview": _preview_requested(request, study)})


@never_cache
@require_POST
@participant_language
def participant_consent(request: HttpRequest, slug: str) -> HttpResponse:
    """'I agree' creates the participant and sets their cookie; 'I do not agree' ends politely.

    The decline page shows the study's no-consent code (and the way back to the recruiting platform
    with it); a participant who came from Prolific is asked to return the study there.
    """
    study = _study(slug)
    if (early := _resume(request, study)) is not None:
        return early
    params = {key[len(PARAM_PREFIX):]: value for key, value in request.POST.items() if key.startswith(PARAM_PREFIX)}
    if request.POST.get("consent") != "agree":
        code = study_outcome_code(study, NO_CONSENT)
        return render(request, "study/participant/declined.html", {
            "study": study, "code": code, "prolific": bool(params.get("PROLIFIC_PID")),
            "return_url": study_completion_url(study, code),
        })
    if (early := _closed_to_newcomers(request, study)) is not None:
        return early
    try:
        participant = participant_create(
            study=study, external_ids=params, user_agent=request.headers.get("User-Agent", ""),
            is_test=_preview_requested(request, study), client_address=client_ip(request),
        )
    except DomainError as error:
        return _error(request, study, error)
    response = redirect(_url("instructions", study))
    response.set_cookie(
        participant_cookie_name(study),
        participant.token,
        max_age=settings.PARTICIPANT_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


@never_cache
@require_GET
@_joined
def participant_instructions(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    if participant_progress(participant=participant).total:
        return redirect(_next_step(study, participant))
    if (early := _may_continue(request, study, participant)) is not None:
        return early
    choices = _choices(study, participant)
    return render(request, "study/participant/instructions.html", {
        "study": study, "participant": participant, "choices": choices, "touch": _is_touch(participant),
        "has_non_emotion": any(choice["non_emotion"] for choice in choices),
    })


@never_cache
@require_POST
@_joined
def participant_start(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    """Allocate the participant's sequence (idempotent) and go to the first trial."""
    try:
        assignment_allocate(participant=participant)
    except DomainError as error:
        return _error(request, study, error)
    return redirect(_url("trial", study))


@never_cache
@participant_language
def participant_trial(request: HttpRequest, slug: str) -> HttpResponse:
    """GET shows the first unanswered trial; POST records a vote and redirects (or answers JSON).

    Both are the hot path of a running study: a GET costs 2 queries, a vote at most 6 (tests assert both).
    """
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    if request.method == "POST" and (fast := _trial_vote_fast(request, slug)) is not None:
        return fast
    if request.method == "GET" and (participant := participant_for_page(slug=slug, cookies=request.COOKIES)):
        return _trial_page(request, participant.study, participant)
    study = _study(slug)
    participant = _participant(request, study)
    if participant is None:
        if _wants_json(request):
            return JsonResponse({"error": "no_participant", "message": "Open the study link first."}, status=403)
        return redirect(_url("entry", study))
    if request.method == "POST":
        return _trial_vote(request, study, participant)
    return _trial_page(request, study, participant)


def _trial_page(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    progress, upcoming = participant_trial_state(participant=participant)  # one query: progress, current, next
    if progress.total == 0 or progress.done:
        return redirect(_url("instructions" if progress.total == 0 else "done", study))
    if (early := _may_continue(request, study, participant)) is not None:
        return early
    current = upcoming[0]
    context = {
        "study": study,
        "participant": participant,
        "progress": progress,
        "assignment": current,
        "image_url": _image_url(study, current.stimulus),
        "next_image_url": _image_url(study, upcoming[1].stimulus) if len(upcoming) > 1 else "",
        "choices": _choices(study, participant),
        "touch": _is_touch(participant),  # no key hints on phones and tablets
        "shown_token": signing.dumps({"s": str(current.stimulus.public_id), "t": _now_ms()}, salt=SHOWN_SALT),
    }
    return render(request, "study/participant/trial.html", context)


def _trial_vote_fast(request: HttpRequest, slug: str) -> HttpResponse | None:
    """The vote in one locked lookup and two or three writes, in raw SQL (study.services.votes.vote_submit). None
    sends the request down the general path, which finds and explains whatever did not match (and writes nothing)."""
    try:
        data = _vote_input(request)
        key = uuid.UUID(str(data.get("stimulus")))
        receipt = vote_submit(slug=slug, cookies=request.COOKIES, stimulus_public_id=key,
                              label=str(data.get("label", "")), response_ms=_response_ms_for(data, str(key)))
    except (DomainError, ValueError):
        return None  # the general path answers with the precise error
    if receipt is None:
        return None
    next_url = reverse(f"study:participant-{'done' if receipt.finished else 'trial'}", args=[slug])
    if _wants_json(request):
        return JsonResponse(_vote_json(stimulus=receipt.stimulus, label=receipt.label,
                                       response_ms=receipt.response_ms, created_at=receipt.created_at,
                                       answered=receipt.answered, total=receipt.total, next_url=next_url))
    return redirect(next_url)


def _vote_json(*, stimulus: uuid.UUID, label: str, response_ms: int, created_at, answered: int, total: int,
               next_url: str) -> dict:
    return {
        "vote": {"stimulus": str(stimulus), "label": label, "response_ms": response_ms,
                 "created_at": created_at.isoformat()},
        "progress": {"answered": answered, "total": total},
        "next_url": next_url,
    }


def _trial_vote(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    try:
        data = _vote_input(request)
        stimulus = _assigned_stimulus(study, data.get("stimulus"))
        response_ms = _response_ms(data, stimulus)
        vote = vote_record(
            participant=participant, stimulus=stimulus, label=str(data.get("label", "")), response_ms=response_ms
        )
    except DomainError as error:
        return _error(request, study, error)
    next_url = _next_step(study, participant)
    if _wants_json(request):
        progress = participant_progress(participant=participant)
        return JsonResponse(_vote_json(stimulus=stimulus.public_id, label=vote.label, response_ms=vote.response_ms,
                                       created_at=vote.created_at, answered=progress.answered, total=progress.total,
                                       next_url=next_url))
    return redirect(next_url)


def _vote_input(request: HttpRequest) -> dict:
    if request.content_type != "application/json":
        return request.POST.dict()
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


def _assigned_stimulus(study: Study, public_id: object) -> Stimulus:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        raise InvalidInput("Missing or malformed image id.") from None
    stimulus = Stimulus.objects.filter(study=study, public_id=key).first()
    if stimulus is None:
        raise NotAssigned("This image is not one of your trials.")
    return stimulus


def _response_ms(data: dict, stimulus: Stimulus) -> object:
    return _response_ms_for(data, str(stimulus.public_id))


def _response_ms_for(data: dict, stimulus_public_id: str) -> object:
    """The client's measurement; without JavaScript, the server's time since the page was rendered."""
    value = data.get("response_ms")
    if value not in (None, ""):
        return value
    try:
        shown = signing.loads(str(data.get("shown", "")), salt=SHOWN_SALT)
    except signing.BadSignature:
        shown = None
    if not isinstance(shown, dict) or shown.get("s") != stimulus_public_id:
        raise InvalidResponseTime("response_ms is required.")
    return min(max(_now_ms() - int(shown["t"]), 0), MAX_RESPONSE_MS)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _image_url(study: Study, stimulus: Stimulus) -> str:
    return reverse("study:participant-image", args=[study.slug, stimulus.public_id])


@never_cache
@require_GET
@_joined
def participant_done(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    """Completion code (finished, or screened out by the attention checks), and the way back to the platform."""
    if participant.finished_at is None:
        if not participant_progress(participant=participant).done:
            return redirect(_next_step(study, participant))
        participant = participant_finish(participant=participant)
    outcome = participant_outcome(participant)
    code = study_outcome_code(study, outcome)
    return render(request, "study/participant/done.html", {
        "study": study, "participant": participant, "outcome": outcome, "completion_code": code,
        "completion_url": study_completion_url(study, code),
        # the demo study (taken from the home page) offers a way on; real studies only send participants back
        "is_demo": study.slug == DEMO_SLUG and not study_completion_url(study, code),
        "live_demo_url": reverse("study:demo"), "home_url": reverse("study:landing"),
    })


@require_GET
def participant_image(request: HttpRequest, slug: str, public_id: uuid.UUID) -> FileResponse:
    """A trial image, only for the participant it is assigned to (no listing of a study's images)."""
    study = _study(slug)
    participant = _participant(request, study)
    stimulus = Stimulus.objects.filter(study=study, public_id=public_id).first()
    if participant is None or stimulus is None or not participant.assignments.filter(stimulus=stimulus).exists():
        raise Http404("No such image.")
    return stimulus_file_response(stimulus)
