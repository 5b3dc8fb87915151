"""REST API under /api/ (included by study/urls.py).

Researcher reads, the participant trial and vote endpoints, the schema and the offline Swagger UI.
"""
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import obtain_auth_token

from study.api import participant
from study.api import views as apis

urlpatterns = [
    # plain Django views on the hot path (first: tried first), documented as (and falling back to) the DRF classes
    # ParticipantTrialApi and ParticipantVoteCreateApi
    path("s/<slug:slug>/votes/", participant.participant_vote, name="api-participant-vote"),
    path("s/<slug:slug>/trial/", participant.participant_trial, name="api-participant-trial"),
    path("", RedirectView.as_view(pattern_name="study:api-docs"), name="api-root"),  # /api/ opens the docs
    path("token/", obtain_auth_token, name="api-token"),
    path("studies/", apis.StudyListApi.as_view(), name="api-study-list"),
    path("studies/<slug:slug>/", apis.StudyDetailApi.as_view(), name="api-study-detail"),
    path("studies/<slug:slug>/stimuli/", apis.StimulusListApi.as_view(), name="api-stimulus-list"),
    path("studies/<slug:slug>/votes/", apis.VoteListApi.as_view(), name="api-vote-list"),
    path("studies/<slug:slug>/predictions/", apis.PredictionListApi.as_view(), name="api-prediction-list"),
    path("studies/<slug:slug>/metrics/", apis.MetricsSummaryApi.as_view(), name="api-metrics"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="study:api-schema"), name="api-docs"),
]
