"""The comparison page in headless Chromium: charts render from the locally served Plotly, sorting works,
no console errors, the uncertainty tab lists a training run by λ. Saves test-artifacts/compare.png and
compare-uncertainty.png."""
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from tests.factories import UserFactory
from tests.study.compare_data import attach_lambda_export, build_study, lambdas_csv

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def login_cookie(user, live_server) -> dict:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"name": django_settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": live_server.url}


def test_comparison_page_draws_charts_sorts_and_logs_no_errors(live_server, chromium_browser):
    from playwright.sync_api import expect

    owner = UserFactory()
    study, models = build_study(images=6, voters=8, owner=owner)
    lams = np.random.default_rng(0).random(300)
    attach_lambda_export(models[0], lambdas_csv(lams, lams < 0.25))
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([login_cookie(owner, live_server)])
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/studies/{study.slug}/compare/")
    expect(page.locator("h1")).to_have_text("Humans vs models")
    expect(page.locator(".card")).to_have_count(6)
    expect(page.locator(".card .chart svg").first).to_be_visible()
    expect(page.locator("#confusion svg").first).to_be_visible()
    assert page.locator(".card .chart .main-svg").count() >= 6

    assert page.evaluate("document.querySelector('.card .chart').data.length") == 3  # humans + 2 models

    page.select_option("select[name=sort]", "ambiguity")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"sort=ambiguity"))
    expect(page.locator(".card .chart svg").first).to_be_visible()
    entropies = [page.evaluate(f"JSON.parse(document.getElementById('chart-data').textContent)['{card_id[5:]}']")
                 for card_id in page.locator(".card").evaluate_all("cards => cards.map(c => c.id)")]
    human = [[v or 0 for v in chart["human"]] for chart in entropies]
    order = [round(-sum(v * math.log(v) for v in row if v > 0), 9) for row in human]
    assert order == sorted(order, reverse=True)  # most ambiguous for people first
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    page.select_option("select[name=model]", str(models[0].pk))
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(rf"model={models[0].pk}"))
    expect(page.locator(".card .chart svg").first).to_be_visible()
    assert page.evaluate("document.querySelector('.card .chart').data.length") == 2  # humans + the chosen model

    page.click("nav.tabs >> text=Uncertainty")
    expect(page.locator("table.lambda-lowest tbody tr")).to_have_count(25)
    expect(page.locator("table.r-table img.thumb").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "compare-uncertainty.png"), full_page=True)
    assert errors == []
    context.close()
