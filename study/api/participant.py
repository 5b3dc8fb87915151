"""The participant's JSON trial state and vote without DRF: the hot path of every study.

Profiled under load (bench/RESULTS.md, "Vote path under load and faults"), DRF's request parsing, content
negotiation and serializers plus the ORM cost a JSON vote ≈ 14 ms of CPU on the reference machine, against
≈ 0.4 ms for a constant Django view. These plain Django views answer the common case (a participant with their
cookie, a well-formed vote or trial request) from one raw SQL statement (study.services.votes.vote_submit, on
PostgreSQL; study.selectors.participants.participant_trial_snapshot) and build the same JSON by hand. Anything else (bad
input, no participant, an image not assigned, a study not open, another HTTP method) goes to the DRF views in
study/api/views.py, which explain it in DRF's error format and stay the documented operations: each view here
carries its DRF class as `cls`, as APIView.as_view() does, so drf-spectacular lists it under that class's schema.
CSRF: these views are not exempt, so Django's CsrfViewMiddleware checks the vote as DRF's csrf_protect did.
"""
import functools
import json
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import get_script_prefix, reverse
from rest_framework.fields import DateTimeField

from study.api.views import ParticipantTrialApi, ParticipantVoteCreateApi
from study.errors import DomainError
from study.selectors.participants import participant_trial_snapshot
from study.services.participants import participant_may_continue
from study.services.votes import MAX_LABEL_LENGTH, MAX_RESPONSE_MS, VoteReceipt, vote_submit

_general_trial = ParticipantTrialApi.as_view()
_general_vote = ParticipantVoteCreateApi.as_view()
_TIMESTAMP = DateTimeField()  # the DRF serializers' format for created_at (ISO 8601, "Z" for UTC)


def documented_as(api_class):
    """Let drf-spectacular list a plain view as `api_class`'s operation (it looks for `cls` and `initkwargs`)."""
    def mark(view):
        view.cls, view.initkwargs = api_class, {}
        return view
    return mark


@documented_as(ParticipantTrialApi)
def participant_trial(request: HttpRequest, slug: str) -> HttpResponse:
    """GET /api/s/<slug>/trial/: progress, the image to show now and the next one to preload."""
    if request.method != "GET":
        return _general_trial(request, slug=slug)
    snapshot = participant_trial_snapshot(slug=slug, cookies=request.COOKIES)
    if snapshot is None or (snapshot.upcoming and not participant_may_continue(
            is_test=snapshot.is_test, study_status=snapshot.study_status,
            finish_when_paused=snapshot.finish_when_paused)):
        return _general_trial(request, slug=slug)  # 404, 403 or 409, explained there
    return JsonResponse({**_trial(slug, snapshot.progress.answered, snapshot.progress.total, snapshot.upcoming),
                         "labels": snapshot.labels})


@documented_as(ParticipantVoteCreateApi)
def participant_vote(request: HttpRequest, slug: str) -> HttpResponse:
    """POST /api/s/<slug>/votes/: the vote, and the participant's next trial in the same answer."""
    fields = _vote_fields(request) if request.method == "POST" else None
    if fields is not None:
        try:
            receipt = vote_submit(slug=slug, cookies=request.COOKIES, **fields)
        except DomainError:
            receipt = None  # nothing written; the general path explains it in DRF's format
        if receipt is not None:
            return JsonResponse(vote_created_json(slug, receipt), status=201)
    return _general_vote(request, slug=slug)


def _vote_fields(request: HttpRequest) -> dict | None:
    """stimulus, label and response_ms from a JSON body that DRF's input serializer would accept as they are; None
    for anything else (another content type, a field missing, of another type or out of range)."""
    if request.content_type != "application/json":
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    stimulus, label, response_ms = data.get("stimulus"), data.get("label"), data.get("response_ms")
    if not (isinstance(stimulus, str) and isinstance(label, str) and type(response_ms) is int):
        return None
    label = label.strip()
    if not 0 < len(label) <= MAX_LABEL_LENGTH or not 0 <= response_ms <= MAX_RESPONSE_MS:
        return None
    try:
        key = uuid.UUID(stimulus)
    except ValueError:
        return None
    return {"stimulus_public_id": key, "label": label, "response_ms": response_ms}


def vote_created_json(slug: str, receipt: VoteReceipt) -> dict:
    """What VoteCreatedOutputSerializer makes of the vote (tests/study/api/test_participant_fast_path.py compares)."""
    return {
        "id": receipt.vote_id, "participant": str(receipt.participant), "stimulus": str(receipt.stimulus),
        "label": receipt.label, "response_ms": receipt.response_ms,
        "participant_excluded": receipt.participant_excluded, "participant_is_test": receipt.participant_is_test,
        "created_at": _TIMESTAMP.to_representation(receipt.created_at),
        "trial": _trial(slug, receipt.answered, receipt.total, receipt.upcoming),
    }


def _trial(slug: str, answered: int, total: int, upcoming: tuple[uuid.UUID, ...]) -> dict:
    head, tail = _image_url_around_key(get_script_prefix(), slug)
    images = [{"stimulus": str(key), "image_url": f"{head}{key}{tail}"} for key in upcoming]
    return {"answered": answered, "total": total, "done": total > 0 and answered >= total,
            "current": images[0] if images else None, "next": images[1] if len(images) > 1 else None}


_ANY_KEY = uuid.UUID(int=0)


@functools.lru_cache(maxsize=4096)
def _image_url_around_key(script_prefix: str, slug: str) -> tuple[str, str]:
    """What comes before and after an image's key in its participant URL: reverse() once per study (and script
    prefix, which reverse() reads), not twice per vote (≈ 0.1 ms of CPU each)."""
    head, tail = reverse("study:participant-image", args=[slug, _ANY_KEY]).split(str(_ANY_KEY))
    return head, tail
