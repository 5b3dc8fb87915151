"""Comparison view, exports and the local Plotly bundle."""
from django.urls import path

from study import views_compare

urlpatterns = [
    path("studies/<slug:slug>/compare/", views_compare.compare, name="study-compare"),
    path("studies/<slug:slug>/export/<str:name>", views_compare.export_file, name="study-export"),
    path("vendor/plotly.min.js", views_compare.plotly_js, name="plotly-js"),
]
