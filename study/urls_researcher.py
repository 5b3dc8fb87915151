"""Researcher pages, included by study/urls.py under /studies/ (names live in the "study" namespace)."""
from django.urls import path

from study import views_researcher as views

urlpatterns = [
    path("", views.study_list, name="researcher-study-list"),
    path("new/", views.study_new, name="researcher-study-create"),
    path("<slug:slug>/", views.study_detail, name="researcher-study-detail"),
    path("<slug:slug>/status/", views.study_status, name="researcher-study-status"),
    path("<slug:slug>/upload/", views.study_upload, name="researcher-study-upload"),
    path("<slug:slug>/images/", views.study_images, name="researcher-study-images"),
    path("<slug:slug>/images/<uuid:public_id>/", views.stimulus_image, name="researcher-stimulus-image"),
]

# Study management (edit, clone, delete, collaborators, preview) and label sets: study/views_study_manage.py.
from study import views_study_manage as manage  # noqa: E402

urlpatterns[2:2] = [
    path("label-sets/", manage.label_set_list, name="researcher-label-sets"),
    path("label-sets/new/", manage.label_set_new, name="researcher-label-set-create"),
]
urlpatterns += [
    path("<slug:slug>/edit/", manage.study_edit, name="researcher-study-edit"),
    path("<slug:slug>/clone/", manage.study_clone_view, name="researcher-study-clone"),
    path("<slug:slug>/delete/", manage.study_delete, name="researcher-study-delete"),
    path("<slug:slug>/collaborators/", manage.study_collaborators, name="researcher-study-collaborators"),
    path("<slug:slug>/preview/", manage.study_preview, name="researcher-study-preview"),
]
