"""The label-scope toggle in headless Chromium: a 7-class model on an 8-label study, switched to its shared
labels; the confusion matrix shrinks to 7 labels, no console error, no serious axe violation.
Saves test-artifacts/compare-label-coverage.png."""
import os
import re

import pytest

from tests.e2e.test_accessibility import ARTIFACTS, assert_accessible
from tests.e2e.test_compare_page import login_cookie
from tests.study.compare_data import build_coverage_study

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_switching_to_shared_labels_in_the_browser(live_server, chromium_browser):
    from playwright.sync_api import expect

    study, seven, _ = build_coverage_study()
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([login_cookie(study.owner, live_server)])
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/studies/{study.slug}/compare/?model={seven.pk}")
    expect(page.locator("#missing-labels-line")).to_contain_text("fer7 has no class for Contempt")
    expect(page.locator(".label-coverage")).to_contain_text("Over the 7 labels it has")
    assert page.evaluate("JSON.parse(document.getElementById('confusion-data').textContent).labels.length") == 8

    page.get_by_label("only the labels each model has").check()
    page.click("#humans-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"labels=shared"))
    expect(page.locator("#summary")).to_contain_text("lacks Contempt · over its 7 labels")
    expect(page.locator("#confusion svg").first).to_be_visible()
    assert page.evaluate("JSON.parse(document.getElementById('confusion-data').textContent).labels.length") == 7
    expect(page.locator(".card .chart svg").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    assert_accessible(page, "compare-label-coverage")
    assert errors == []
    context.close()
