"""The demo study's thank-you page offers a way on (the live demo, the home page); real studies keep sending
participants back to their recruiting platform and show no such links."""
import pytest
from django.test import Client
from django.urls import reverse

from tests.study.views.test_participant import finish, join, make_study, url

pytestmark = pytest.mark.django_db


def _done_page(study) -> str:
    client = Client()
    join(client, study)
    finish(client, study)
    return client.get(url("done", study)).content.decode()


def test_the_demo_studys_done_page_links_to_the_live_demo_and_the_home_page():
    page = _done_page(make_study(n_images=2, slug="demo", completion_code="DEMO1"))
    assert 'id="demo-next"' in page
    assert f'href="{reverse("study:demo")}"' in page and "Try the live demo" in page
    assert f'href="{reverse("study:landing")}"' in page and "Back to the home page" in page
    assert "Copy the code above into the platform" not in page  # nobody sent them here from a platform


def test_a_german_demo_study_says_it_in_german():
    page = _done_page(make_study(n_images=2, slug="demo", language="de"))
    assert "Live-Demo ausprobieren" in page and "Zurück zur Startseite" in page


def test_a_real_study_keeps_its_completion_redirect_and_shows_no_demo_links():
    page = _done_page(make_study(n_images=2, slug="real", completion_code="C0DE",
                                 completion_url="https://app.prolific.com/submissions/complete"))
    target = "https://app.prolific.com/submissions/complete?cc=C0DE"
    assert f'content="5;url={target}"' in page and f'href="{target}"' in page
    assert 'id="demo-next"' not in page and "Try the live demo" not in page


def test_a_demo_study_given_a_completion_url_redirects_like_any_other():
    page = _done_page(make_study(n_images=2, slug="demo", completion_code="X1", completion_url="https://x.org/c"))
    assert 'content="5;url=https://x.org/c?cc=X1"' in page and 'id="demo-next"' not in page


def test_a_study_without_completion_url_still_asks_to_copy_the_code():
    page = _done_page(make_study(n_images=2, slug="lab", completion_code="LAB1"))
    assert "LAB1" in page and "Copy the code above into the platform" in page and 'id="demo-next"' not in page
