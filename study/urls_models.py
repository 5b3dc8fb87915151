"""Model registry and prediction-job pages."""
from django.urls import path

from study import views_models

urlpatterns = [
    path("models/", views_models.model_list, name="model-list"),
    path("models/<int:pk>/", views_models.model_detail, name="model-detail"),
    path("models/<int:pk>/status.json", views_models.model_status, name="model-status"),
    path("models/<int:pk>/delete/", views_models.model_delete, name="model-delete"),
    path("models/<int:pk>/share/", views_models.model_share, name="model-share"),
    path("studies/<slug:slug>/predict/", views_models.study_predict, name="study-predict"),
    path("jobs/<int:pk>/", views_models.job_detail, name="job-detail"),
    path("jobs/<int:pk>/status.json", views_models.job_status, name="job-status"),
    path("jobs/<int:pk>/cancel/", views_models.job_cancel, name="job-cancel"),
]
