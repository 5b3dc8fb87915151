"""The new-study form in Chromium: the adaptive-allocation settings appear only while "Adaptive" is chosen, and a
study created either way keeps what the researcher chose."""
import os
from pathlib import Path

import pytest

from study.models import Study
from tests.e2e.test_compare_page import login_cookie
from tests.factories import LabelSetFactory, UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADAPTIVE = ["min_votes_per_image", "max_votes_per_image", "stability_threshold"]


def _visible(page) -> list[bool]:
    return [page.locator(f"[name={name}]").is_visible() for name in ADAPTIVE]


def test_adaptive_fields_follow_the_allocation_choice(live_server, chromium_browser):
    from playwright.sync_api import expect

    LabelSetFactory()
    researcher = UserFactory(username="allocator", is_staff=False)
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    context.add_cookies([login_cookie(researcher, live_server)])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_server.url}/studies/new/")
    expect(page.locator("select[name=allocation]")).to_have_value("fixed")
    assert _visible(page) == [False, False, False]
    assert page.locator("[name=votes_per_image]").is_visible()
    page.select_option("select[name=allocation]", "adaptive")
    assert _visible(page) == [True, True, True]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "study-form-adaptive-390.png"), full_page=True)
    page.fill("input[name=max_votes_per_image]", "12")
    page.select_option("select[name=allocation]", "fixed")
    assert _visible(page) == [False, False, False]
    page.screenshot(path=str(ARTIFACTS / "study-form-fixed-390.png"), full_page=True)
    page.select_option("select[name=allocation]", "adaptive")
    page.fill("input[name=title]", "Adaptive faces")
    page.fill("input[name=slug]", "adaptive-faces")
    page.get_by_role("button", name="Create study").click()
    expect(page).to_have_url(f"{live_server.url}/studies/adaptive-faces/")
    study = Study.objects.get(slug="adaptive-faces")
    assert (study.allocation, study.max_votes_per_image) == ("adaptive", 12)
    assert errors == []
