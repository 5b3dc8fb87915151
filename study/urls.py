"""URLs of the study app. Participant pages live under /s/<slug>/; add other areas as include lines below."""
from django.urls import include, path

from study import views

app_name = "study"

participant_patterns = [
    path("", views.participant_entry, name="participant-entry"),
    path("consent/", views.participant_consent, name="participant-consent"),
    path("instructions/", views.participant_instructions, name="participant-instructions"),
    path("start/", views.participant_start, name="participant-start"),
    path("trial/", views.participant_trial, name="participant-trial"),
    path("done/", views.participant_done, name="participant-done"),
    path("img/<uuid:public_id>/", views.participant_image, name="participant-image"),
]

urlpatterns: list = [
    path("s/<slug:slug>/", include(participant_patterns)),
    path("studies/", include("study.urls_researcher")),
    path("", include("study.urls_models")),
    path("", include("study.urls_compare")),
    path("", include("study.urls_demo")),
    path("api/", include("study.urls_api")),
]
