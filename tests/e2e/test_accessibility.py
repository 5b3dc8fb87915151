"""Accessibility in headless Chromium with axe-core (axe-playwright-python): the participant pages (desktop and
a 390 px touch phone, English and German, forced colours) and the comparison view report no serious or critical
violation; every button has an accessible name; the trial's progress label is never clipped.
Saves test-artifacts/a11y-<page>-<desktop|phone>.png for a look."""
import os
import re
from pathlib import Path

import pytest

from study.models import Study
from tests.e2e.test_compare_page import login_cookie
from tests.e2e.test_participant_flow import make_study
from tests.factories import StimulusFactory, UserFactory
from tests.study.compare_data import build_study

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BLOCKING = {"serious", "critical"}
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {"viewport": {"width": 390, "height": 844}, "user_agent": IPHONE, "has_touch": True, "is_mobile": True,
              "device_scale_factor": 2},
}


def assert_accessible(page, name: str) -> None:
    """No serious/critical axe violation, every button named; a screenshot for the record."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"a11y-{name}.png"), full_page=True)
    violations = Axe().run(page).response["violations"]
    blocking = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                for v in violations if v.get("impact") in BLOCKING]
    assert not blocking, f"{name}: " + "; ".join(blocking)
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, [role=button], input[type=submit]')]
        .filter(b => !(b.getAttribute('aria-label') || b.innerText || b.value || '').trim()).map(b => b.outerHTML)""")
    assert not unnamed, f"{name}: buttons without an accessible name: {unnamed}"


def assert_progress_label_fits(page, name: str) -> None:
    box = page.evaluate("""() => { const l = document.getElementById('progress-label');
        const r = l.getBoundingClientRect(); const p = l.parentElement.getBoundingClientRect();
        return {clipped: l.scrollWidth > l.clientWidth + 1 || l.scrollHeight > l.clientHeight + 1,
                inside: r.left >= p.left - 1 && r.right <= p.right + 1 && r.top >= p.top - 1 && r.bottom <= p.bottom + 1,
                visible: r.width > 0 && r.height > 0 && r.right <= window.innerWidth,
                overflow: getComputedStyle(l.parentElement).overflow}; }""")
    assert box["visible"] and box["inside"] and not box["clipped"], f"{name}: progress label clipped: {box}"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_participant_pages_have_no_serious_violations(live_server, chromium_browser, device):
    from playwright.sync_api import expect

    study = make_study()
    context = chromium_browser.new_context(**DEVICES[device])
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=p-a11y")
    assert_accessible(page, f"consent-{device}")
    page.get_by_role("button", name="I agree").click()
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()
    expect(page.locator("#how-to-answer")).to_contain_text("Tap" if device == "phone" else "press its key")
    assert_accessible(page, f"instructions-{device}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#progress-label")).to_have_text("1 of 5")
    page.wait_for_function("() => document.getElementById('stimulus').complete")
    assert_accessible(page, f"trial-{device}")
    assert_progress_label_fits(page, f"trial-{device}")
    page.emulate_media(forced_colors="active")  # Windows high-contrast mode
    assert_accessible(page, f"trial-forced-colors-{device}")
    page.emulate_media(forced_colors="none")
    for number in range(1, 6):
        expect(page.locator("#progress-label")).to_have_text(f"{number} of 5")
        expect(page.locator("button.choice").first).to_be_enabled()
        page.locator("button.choice").nth(number % 3).click()
    expect(page.locator("#completion-code")).to_have_text("E2E-DONE")
    assert_accessible(page, f"done-{device}")
    decline = context.new_page()
    decline.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=p-no")
    decline.context.clear_cookies()
    decline.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=p-no")
    decline.get_by_role("button", name="I do not agree").click()
    expect(decline.locator("#return-note")).to_be_visible()
    assert_accessible(decline, f"declined-{device}")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    decline.goto(f"{live_server.url}/s/{study.slug}/")
    expect(decline.get_by_role("heading", name="This study is not open")).to_be_visible()
    assert_accessible(decline, f"paused-{device}")
    context.close()


def test_german_trial_with_non_emotion_answers_on_a_phone(live_server, chromium_browser):
    from playwright.sync_api import expect

    from study.models import LabelSet

    study = make_study()
    ferplus, _ = LabelSet.objects.get_or_create(  # transactional tests flush the migration's seed rows
        name="FER+ (8 + Unknown, Not a face)",
        defaults={"labels": ["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt"],
                  "non_emotion_labels": ["Unknown", "Not a face"]})
    Study.objects.filter(pk=study.pk).update(language="de", label_set=ferplus)
    context = chromium_browser.new_context(**DEVICES["phone"])
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{study.slug}/")
    page.get_by_role("button", name="Ich stimme zu").click()
    expect(page.locator("#how-to-answer")).to_contain_text("Tippen")
    page.get_by_role("button", name="Los geht’s").click()
    expect(page.locator("#progress-label")).to_have_text("1 von 5")
    expect(page.get_by_role("button", name="Kein Gesicht")).to_be_visible()
    page.wait_for_function("() => document.getElementById('stimulus').complete")
    assert page.evaluate("document.documentElement.lang") == "de"
    assert_accessible(page, "trial-de-phone")
    assert_progress_label_fits(page, "trial-de-phone")
    context.close()


def test_comparison_view_has_no_serious_violations(live_server, chromium_browser):
    from playwright.sync_api import expect

    owner = UserFactory()
    study, _models = build_study(images=4, voters=6, owner=owner)
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([login_cookie(owner, live_server)])
    page = context.new_page()
    page.goto(f"{live_server.url}/studies/{study.slug}/compare/")
    expect(page.locator(".card .chart svg").first).to_be_visible()
    assert_accessible(page, "compare-desktop")
    context.close()


def test_researcher_preview_of_a_draft_in_the_browser(live_server, chromium_browser):
    from playwright.sync_api import expect

    owner = UserFactory()
    study = make_study()
    Study.objects.filter(pk=study.pk).update(owner=owner, status=Study.Status.DRAFT)
    StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([login_cookie(owner, live_server)])
    page = context.new_page()
    page.goto(f"{live_server.url}/studies/{study.slug}/")
    with context.expect_page() as opened:
        page.locator("#preview-button").click()
    preview = opened.value
    expect(preview.locator("#preview-note")).to_be_visible()
    preview.get_by_role("button", name="I agree").click()
    expect(preview.locator("#test-badge")).to_be_visible()
    assert re.search(r"/instructions/$", preview.url)
    context.close()
