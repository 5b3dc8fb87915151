"""Researcher account pages under /accounts/ beside Django's login, logout and password views, and the
workspace pages that span studies (jobs list, first-run progress, the simulated-votes switch)."""
from django.urls import path

from study import accounts_views, workspace_views

urlpatterns = [
    path("invite/", accounts_views.invite, name="account-invite"),
    path("join/<str:token>/", accounts_views.join, name="account-join"),
    path("signup/", accounts_views.signup, name="account-signup"),
]

workspace_patterns = [
    path("jobs/", workspace_views.job_list, name="job-list"),
    path("models/setup.json", workspace_views.setup_status, name="setup-status"),
    path("studies/<slug:slug>/simulated/", workspace_views.study_simulated_toggle, name="study-simulated"),
]
