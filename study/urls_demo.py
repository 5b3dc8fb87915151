"""The public demo page and the researchers' donation pool."""
from django.urls import path

from study import views_demo

urlpatterns = [
    path("demo/", views_demo.demo_page, name="demo"),
    path("demo/upload/", views_demo.demo_upload, name="demo-upload"),
    path("demo/r/<uuid:public_id>/", views_demo.demo_status, name="demo-status"),
    path("demo/donations/", views_demo.donations, name="demo-donations"),
    path("demo/donations/<int:pk>.png", views_demo.donation_image, name="demo-donation-image"),
]
