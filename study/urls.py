"""Every URL of the study app, one list per area; each area's views live in study/views/<area>.py.

All names live in the "study" namespace (e.g. `study:researcher-study-detail`). The REST API's list is
study/api/urls.py, mounted under /api/.
"""
from django.urls import include, path

from study.views import (
    accounts,
    compare,
    demo,
    landing,
    manage,
    model_figures,
    models,
    participant,
    participants,
    researcher,
    vote_imports,
    workspace,
)

app_name = "study"

participant_patterns = [  # /s/<slug>/...
    path("", participant.participant_entry, name="participant-entry"),
    path("consent/", participant.participant_consent, name="participant-consent"),
    path("instructions/", participant.participant_instructions, name="participant-instructions"),
    path("start/", participant.participant_start, name="participant-start"),
    path("trial/", participant.participant_trial, name="participant-trial"),
    path("done/", participant.participant_done, name="participant-done"),
    path("img/<uuid:public_id>/", participant.participant_image, name="participant-image"),
]

researcher_patterns = [  # /studies/...
    path("", researcher.study_list, name="researcher-study-list"),
    path("new/", researcher.study_new, name="researcher-study-create"),
    path("label-sets/", manage.label_set_list, name="researcher-label-sets"),
    path("label-sets/new/", manage.label_set_new, name="researcher-label-set-create"),
    path("label-sets/<int:pk>/edit/", manage.label_set_edit, name="researcher-label-set-edit"),
    path("<slug:slug>/", researcher.study_detail, name="researcher-study-detail"),
    path("<slug:slug>/status/", researcher.study_status, name="researcher-study-status"),
    path("<slug:slug>/upload/", researcher.study_upload, name="researcher-study-upload"),
    path("<slug:slug>/images/", researcher.study_images, name="researcher-study-images"),
    path("<slug:slug>/import-votes/", vote_imports.study_import_votes, name="researcher-study-import-votes"),
    path("<slug:slug>/participants/", participants.participant_list, name="researcher-participants"),
    path("<slug:slug>/participants/<uuid:public_id>/exclusion/", participants.participant_exclusion,
         name="researcher-participant-exclusion"),
    path("<slug:slug>/uploads/<int:pk>/", researcher.upload_batch_detail, name="researcher-upload-batch"),
    path("<slug:slug>/uploads/<int:pk>/report.csv", researcher.upload_batch_report_csv,
         name="researcher-upload-batch-report"),
    path("<slug:slug>/uploads/<int:pk>/status.json", researcher.upload_batch_status,
         name="researcher-upload-batch-status"),
    path("<slug:slug>/images/<uuid:public_id>/", researcher.stimulus_image, name="researcher-stimulus-image"),
    # managing a study (views/manage.py): edit, clone, delete a draft, collaborators, preview as a participant
    path("<slug:slug>/edit/", manage.study_edit, name="researcher-study-edit"),
    path("<slug:slug>/clone/", manage.study_clone_view, name="researcher-study-clone"),
    path("<slug:slug>/delete/", manage.study_delete, name="researcher-study-delete"),
    path("<slug:slug>/collaborators/", manage.study_collaborators, name="researcher-study-collaborators"),
    path("<slug:slug>/preview/", manage.study_preview, name="researcher-study-preview"),
]

model_patterns = [  # the model registry and prediction jobs
    path("models/", models.model_list, name="model-list"),
    path("models/<int:pk>/", models.model_detail, name="model-detail"),
    path("models/<int:pk>/status.json", models.model_status, name="model-status"),
    path("models/<int:pk>/delete/", models.model_delete, name="model-delete"),
    path("models/<int:pk>/share/", models.model_share, name="model-share"),
    path("models/<int:pk>/figure4.png", model_figures.figure4_image, name="model-figure4-image"),
    path("models/<int:pk>/figure4/<int:n>.png", model_figures.figure4_thumbnail, name="model-figure4-thumbnail"),
    path("models/<int:pk>/figures/", model_figures.figures_attach, name="model-figures-attach"),
    path("studies/<slug:slug>/predict/", models.study_predict, name="study-predict"),
    path("jobs/<int:pk>/", models.job_detail, name="job-detail"),
    path("jobs/<int:pk>/status.json", models.job_status, name="job-status"),
    path("jobs/<int:pk>/cancel/", models.job_cancel, name="job-cancel"),
]

compare_patterns = [  # the comparison view (Figure 3) and export downloads
    path("studies/<slug:slug>/compare/", compare.compare, name="study-compare"),
    path("studies/<slug:slug>/export/<str:name>", compare.export_file, name="study-export"),
]

demo_patterns = [  # the public live demo page and the researchers' donation pool
    path("demo/", demo.demo_page, name="demo"),
    path("demo/upload/", demo.demo_upload, name="demo-upload"),
    path("demo/r/<uuid:public_id>/", demo.demo_status, name="demo-status"),
    path("demo/donations/", demo.donations, name="demo-donations"),
    path("demo/donations/<int:pk>.png", demo.donation_image, name="demo-donation-image"),
]

account_patterns = [  # /accounts/... beside Django's login, logout and password views (webapp/urls.py)
    path("invite/", accounts.invite, name="account-invite"),
    path("join/<str:token>/", accounts.join, name="account-join"),
    path("signup/", accounts.signup, name="account-signup"),
]

workspace_patterns = [  # researcher pages that span studies
    path("jobs/", workspace.job_list, name="job-list"),
    path("models/setup.json", workspace.setup_status, name="setup-status"),
    path("studies/<slug:slug>/simulated/", workspace.study_simulated_toggle, name="study-simulated"),
]

urlpatterns: list = [
    path("", landing.landing, name="landing"),
    # First: every participant's vote and trial state is resolved here, and Django tries the patterns in order
    # (behind the "" includes below, ≈ 0.2 ms of CPU per vote went to trying 40 patterns that cannot match).
    path("api/", include("study.api.urls")),
    path("accounts/", include(account_patterns)),
    path("", include(workspace_patterns)),
    path("s/<slug:slug>/", include(participant_patterns)),
    path("studies/", include(researcher_patterns)),
    path("", include(model_patterns)),
    path("", include(compare_patterns)),
    path("", include(demo_patterns)),
]
