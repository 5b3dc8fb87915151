"""With DEBUG off every error is the site's own page (no technical 404, no traceback), without inline scripts."""
import re

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client
from django.urls import include, path


def _raise(error):
    def view(request):
        raise error
    return view


urlpatterns = [
    path("boom/", _raise(RuntimeError("secret detail of the failure"))),
    path("forbidden/", _raise(PermissionDenied())),
    path("malformed/", _raise(SuspiciousOperation("odd"))),
    path("", include("webapp.urls")),
]


def _assert_branded(response, status, heading):
    html = response.content.decode()
    assert response.status_code == status
    assert heading in html
    assert "Back to the home page" in html and 'href="/"' in html
    assert "emostudy.css" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script would break the CSP"
    for technical in ("Traceback", "Django tried these URL patterns", "DEBUG = True", "secret detail"):
        assert technical not in html


@pytest.mark.django_db
def test_an_unknown_address_gets_the_branded_404(client, settings):
    settings.DEBUG = False
    _assert_branded(client.get("/no-such-page/"), 404, "This page does not exist")


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_server_error_gets_the_branded_500_without_its_details(settings):
    settings.DEBUG = False
    _assert_branded(Client(raise_request_exception=False).get("/boom/"), 500, "Something went wrong on our side")


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_forbidden_and_malformed_requests_get_branded_pages(client, settings):
    settings.DEBUG = False
    _assert_branded(client.get("/forbidden/"), 403, "You may not open this page")
    _assert_branded(client.get("/malformed/"), 400, "This request could not be understood")


@pytest.mark.django_db
def test_a_refused_csrf_token_gets_the_branded_page(settings):
    settings.DEBUG = False
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
    _assert_branded(response, 403, "This form could not be sent")


@pytest.mark.django_db
def test_a_signed_in_researcher_is_offered_their_studies_not_the_login(client, settings):
    from tests.factories import UserFactory

    settings.DEBUG = False
    client.force_login(UserFactory())
    html = client.get("/studies/no-such-study/").content.decode()
    assert "Your studies" in html and "Researcher log in" not in html
