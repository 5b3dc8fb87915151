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
