"""The home page: what EmoStudy is and links to the demo study, researcher login, the demo comparison, the API docs
and, when its URL exists, the live demo page."""
import pytest
from django.urls import NoReverseMatch, reverse

from study.models import Prediction
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_home_page_explains_and_links_everything_a_newcomer_needs(client):
    StudyFactory(slug="demo")
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "EmoStudy" in html and "compare" in html.lower()
    for href in ('href="/s/demo/"', 'href="/accounts/login/"', 'href="/studies/demo/compare/"', 'href="/api/docs/"'):
        assert href in html, href


def test_live_demo_is_linked_only_when_its_page_exists(client):
    html = client.get("/").content.decode()
    try:
        live = reverse("study:demo")
    except NoReverseMatch:
        assert 'id="tile-live-demo"' not in html
    else:
        assert f'href="{live}"' in html


def test_home_page_works_without_a_demo_study_and_greets_a_logged_in_researcher(client):
    response = client.get("/")
    assert response.status_code == 200 and 'href="/s/demo/"' not in response.content.decode()
    client.force_login(UserFactory(username="ada"))
    html = client.get("/").content.decode()
    assert "Logged in as ada" in html and 'href="/studies/"' in html


def test_a_paused_demo_says_so_instead_of_linking(client):
    StudyFactory(slug="demo", status="paused")
    html = client.get("/").content.decode()
    assert "paused at the moment" in html and 'href="/s/demo/"' not in html


def test_the_comparison_tile_says_the_demo_model_is_coming_until_the_demo_study_has_predictions(client):
    demo = StudyFactory(slug="demo")
    stimulus = StimulusFactory(study=demo)
    model = ModelVersionFactory()  # valid, like the real-face baseline minutes before the demo model is trained
    assert "still being built" in client.get("/").content.decode()
    labels = demo.label_set.labels
    Prediction.objects.create(stimulus=stimulus, model_version=model, ambiguity=0.5,
                              distribution=[1 / len(labels)] * len(labels))
    assert "still being built" not in client.get("/").content.decode()
