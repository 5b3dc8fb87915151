"""Comparison view and export downloads (Plotly comes from the static files: study/staticfiles.py)."""
from django.urls import path

from study import views_compare

urlpatterns = [
    path("studies/<slug:slug>/compare/", views_compare.compare, name="study-compare"),
    path("studies/<slug:slug>/export/<str:name>", views_compare.export_file, name="study-export"),
]
