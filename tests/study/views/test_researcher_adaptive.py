"""The create form's adaptive-allocation settings."""
import re

import pytest

from study.models import Study
from tests.study.views.test_researcher import create_data, owner, owner_client, url  # noqa: F401

pytestmark = pytest.mark.django_db


def test_create_form_stores_adaptive_settings(owner_client):  # noqa: F811
    response = owner_client.post(url("study-create"), create_data(
        allocation="adaptive", min_votes_per_image=4, max_votes_per_image=25, stability_threshold=0.03))
    assert response.status_code == 302
    study = Study.objects.get(slug="faces-2025")
    assert (study.allocation, study.min_votes_per_image, study.max_votes_per_image, study.stability_threshold) \
        == ("adaptive", 4, 25, 0.03)


def test_create_form_rejects_a_maximum_below_the_minimum(owner_client):  # noqa: F811
    response = owner_client.post(url("study-create"), create_data(
        allocation="adaptive", min_votes_per_image=10, max_votes_per_image=5))
    assert response.status_code == 400 and "at least the minimum" in response.content.decode()
    assert not Study.objects.filter(slug="faces-2025").exists()


def test_a_fixed_allocation_ignores_the_adaptive_settings_a_browser_without_javascript_sends(owner_client):  # noqa: F811
    response = owner_client.post(url("study-create"), create_data(
        allocation="fixed", min_votes_per_image=50, max_votes_per_image=2, stability_threshold="not a number"))
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(slug="faces-2025")
    assert (study.allocation, study.min_votes_per_image, study.max_votes_per_image, study.stability_threshold) \
        == ("fixed", 3, 30, 0.02)


def test_the_adaptive_fields_are_marked_for_the_form_script(owner_client):  # noqa: F811
    html = owner_client.get(url("study-create")).content.decode()
    for name in ("min_votes_per_image", "max_votes_per_image", "stability_threshold"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'data-allocation-only="adaptive"' in tag
    assert "study/researcher/study_form.js" in html
