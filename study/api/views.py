"""REST API (DRF): researcher reads of their own studies, and the participant trial and vote endpoints.

One APIView per operation (STYLE.md). Researchers authenticate with a session or a token
(`Authorization: Token <key>`, from POST /api/token/); every read is limited to the studies the user
owns (superusers: all), and another user's study answers 404.
"""
import math
import uuid

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from study.api.serializers import (
    MetricsOutputSerializer,
    PredictionOutputSerializer,
    PredictionPageSerializer,
    StimulusOutputSerializer,
    StimulusPageSerializer,
    StudyOutputSerializer,
    TrialOutputSerializer,
    VoteCreatedOutputSerializer,
    VoteCursorPageSerializer,
    VoteOutputSerializer,
)
from study.errors import DomainError
from study.models import Prediction, Stimulus, Study, Vote
from study.selectors.access import studies_visible_to
from study.selectors.compare import LABEL_SCOPES, comparison_data, model_summaries, study_headcount
from study.selectors.participants import (
    participant_for_page,
    participant_from_cookies,
    participant_trial_state,
)
from study.services.votes import MAX_LABEL_LENGTH, MAX_RESPONSE_MS


class Pages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000



PAGE_SIZE_HELP = f"items per page (default {Pages.page_size}, at most {Pages.max_page_size})"

class VoteCursor(CursorPagination):
    page_size = 500
    ordering = "id"


def _study(request, slug: str) -> Study:
    return get_object_or_404(studies_visible_to(request.user).select_related("label_set"), slug=slug)


class DomainProblem(APIException):
    """A service's domain error as an HTTP answer with its own status and message."""

    def __init__(self, error: DomainError):
        self.status_code = error.status_code
        super().__init__(detail=error.message, code=error.code)


class StudyListApi(APIView):
    @extend_schema(responses=StudyOutputSerializer(many=True))
    def get(self, request):
        studies = studies_visible_to(request.user).select_related("label_set").order_by("-created_at")
        return Response(StudyOutputSerializer(studies, many=True).data)


class StudyDetailApi(APIView):
    @extend_schema(responses=StudyOutputSerializer)
    def get(self, request, slug: str):
        return Response(StudyOutputSerializer(_study(request, slug)).data)


class StimulusListApi(APIView):
    @extend_schema(responses=StimulusPageSerializer, parameters=[
        OpenApiParameter("page", int, description="page number, from 1"),
        OpenApiParameter("page_size", int, description=PAGE_SIZE_HELP)])
    def get(self, request, slug: str):
        paginator = Pages()
        page = paginator.paginate_queryset(Stimulus.objects.filter(study=_study(request, slug)).order_by("pk"),
                                           request, view=self)
        return paginator.get_paginated_response(StimulusOutputSerializer(page, many=True).data)


class VoteListApi(APIView):
    @extend_schema(responses=VoteCursorPageSerializer, parameters=[
        OpenApiParameter("cursor", str, description="opaque position from a previous page's next/previous link"),
        OpenApiParameter("include_test", bool, description="also list the votes of test participants (previews)")])
    def get(self, request, slug: str):
        votes = Vote.objects.filter(stimulus__study=_study(request, slug)).select_related("participant", "stimulus")
        if request.query_params.get("include_test") not in ("1", "true"):
            votes = votes.filter(participant__is_test=False)  # researchers' previews are not data
        paginator = VoteCursor()
        page = paginator.paginate_queryset(votes, request, view=self)
        return paginator.get_paginated_response(VoteOutputSerializer(page, many=True).data)


class PredictionListApi(APIView):
    @extend_schema(responses=PredictionPageSerializer, parameters=[
        OpenApiParameter("page", int, description="page number, from 1"),
        OpenApiParameter("page_size", int, description=PAGE_SIZE_HELP)])
    def get(self, request, slug: str):
        predictions = (Prediction.objects.filter(stimulus__study=_study(request, slug))
                       .select_related("stimulus", "model_version").order_by("pk"))
        paginator = Pages()
        page = paginator.paginate_queryset(predictions, request, view=self)
        return paginator.get_paginated_response(PredictionOutputSerializer(page, many=True).data)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


class MetricsSummaryApi(APIView):
    class InputSerializer(serializers.Serializer):
        labels = serializers.ChoiceField(choices=list(LABEL_SCOPES), default="all", required=False)

    @extend_schema(responses=MetricsOutputSerializer, parameters=[
        OpenApiParameter("labels", str, enum=list(LABEL_SCOPES), description=(
            "all (default): every model scored over all the study's labels (a label it lacks has probability "
            "0); shared: a model lacking labels scored over the labels it has only, both distributions "
            "renormalised, images whose votes are all on its missing labels left out and counted"))])
    def get(self, request, slug: str):
        study = _study(request, slug)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        label_scope = query.validated_data["labels"]
        data = comparison_data(study=study)
        headcount = study_headcount(study=study)
        rows = [{k: _finite(v) for k, v in row.items()} for row in model_summaries(data, label_scope=label_scope)]
        return Response(MetricsOutputSerializer({
            "labels": data.labels, "label_scope": label_scope, "votes_counted": headcount["votes_counted"],
            "participants": headcount["participants"], "excluded": headcount["excluded"], "summaries": rows}).data)


def _participant(request, study: Study):
    return participant_from_cookies(study=study, cookies=request.COOKIES)


NO_PARTICIPANT = {"detail": "open the study link and give consent first"}


class ParticipantTrialApi(APIView):
    """The trial page's state as JSON: progress, the image to show now and the next one to preload. Served by
    study.api.participant.participant_trial, which hands this class what it does not answer itself."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["participants"], responses={200: TrialOutputSerializer})
    def get(self, request, slug: str):
        """The general path (study.api.participant.participant_trial answers the common case in one raw statement):
        two queries, as the trial page: the participant with study and label set, then the sequence."""
        from study.services.participants import participant_require_can_continue

        participant = participant_for_page(slug=slug, cookies=request.COOKIES)
        if participant is None:
            get_object_or_404(Study, slug=slug)  # an unknown study is a 404, a missing participant a 403
            return Response(NO_PARTICIPANT, status=status.HTTP_403_FORBIDDEN)
        study = participant.study
        progress, upcoming = participant_trial_state(participant=participant)
        if upcoming:
            try:
                participant_require_can_continue(participant, study)
            except DomainError as error:
                raise DomainProblem(error) from None

        def image(assignment):
            return {"stimulus": assignment.stimulus.public_id,
                    "image_url": reverse("study:participant-image", args=[study.slug, assignment.stimulus.public_id])}

        return Response(TrialOutputSerializer({
            "answered": progress.answered, "total": progress.total, "done": progress.done,
            "labels": participant.label_order or study.label_set.labels,
            "current": image(upcoming[0]) if upcoming else None,
            "next": image(upcoming[1]) if len(upcoming) > 1 else None}).data)


@method_decorator(csrf_protect, name="dispatch")
class ParticipantVoteCreateApi(APIView):
    """The trial page's vote, as JSON: the participant is the one whose cookie the browser sends. Served by
    study.api.participant.participant_vote, which hands this class what it does not answer itself."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        stimulus = serializers.UUIDField()
        label = serializers.CharField(max_length=MAX_LABEL_LENGTH)
        response_ms = serializers.IntegerField(min_value=0, max_value=MAX_RESPONSE_MS)

    @extend_schema(tags=["participants"], request=InputSerializer, responses={201: VoteCreatedOutputSerializer})
    def post(self, request, slug: str):
        """The general path, through the ORM: study.api.participant.participant_vote answers the common case in raw
        SQL and sends here what it does not (bad input, no participant, an image not assigned, a study not open)."""
        from study.services.votes import vote_record

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = get_object_or_404(Study.objects.select_related("label_set"), slug=slug)
        participant = _participant(request, study)
        if participant is None:
            return Response(NO_PARTICIPANT, status=status.HTTP_403_FORBIDDEN)
        stimulus = Stimulus.objects.filter(study=study, public_id=data.validated_data["stimulus"]).first()
        if stimulus is None:
            return Response({"detail": "that image is not part of this study"}, status=status.HTTP_400_BAD_REQUEST)
        try:
            vote = vote_record(participant=participant, stimulus=stimulus, label=data.validated_data["label"],
                               response_ms=data.validated_data["response_ms"])
        except DomainError as error:
            raise DomainProblem(error) from None
        progress, upcoming = participant_trial_state(participant=participant)
        return _vote_created(slug, vote, progress.answered, progress.total,
                             tuple(a.stimulus.public_id for a in upcoming))


def _vote_created(slug: str, vote: Vote, answered: int, total: int, upcoming: tuple) -> Response:
    """201 with the vote and the participant's trial progress after it (the next images, if any)."""
    images = [{"stimulus": key, "image_url": reverse("study:participant-image", args=[slug, key])}
              for key in (uuid.UUID(str(key)) for key in upcoming)]
    vote.trial = {"answered": answered, "total": total, "done": total > 0 and answered >= total,
                  "current": images[0] if images else None, "next": images[1] if len(images) > 1 else None}
    return Response(VoteCreatedOutputSerializer(vote).data, status=status.HTTP_201_CREATED)
