"""A participant in headless Chromium: link with PROLIFIC_PID, consent, keyboard and mouse votes,
reload, back button and a double click mid-study, completion code. Saves screenshots under test-artifacts/."""
import hashlib
import io
import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from study.models import Participant, Vote
from tests.factories import StimulusFactory, StudyFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def face_png(seed: int, size: int = 160) -> bytes:
    """A simple drawn face (head, eyes, brows, mouth) that differs with the seed."""
    image = Image.new("RGB", (size, size), (226, 230, 236))
    draw = ImageDraw.Draw(image)
    skin = (236 - seed * 9 % 40, 196 - seed * 7 % 40, 160 - seed * 5 % 40)
    draw.ellipse((22, 12, size - 22, size - 8), fill=skin, outline=(120, 90, 70), width=2)
    for x in (58, size - 58):
        draw.ellipse((x - 9, 62, x + 9, 74), fill="white", outline=(60, 40, 30))
        draw.ellipse((x - 4, 64, x + 4, 72), fill=(50, 35, 25))
        tilt = (seed % 3 - 1) * 6
        draw.line((x - 12, 52 - tilt, x + 12, 52 + tilt), fill=(80, 55, 40), width=3)
    smile = (seed % 5 - 2) * 8
    draw.arc((55, 100 - abs(smile), size - 55, 122 + abs(smile)), 20 if smile > 0 else 200, 160 if smile > 0 else 340,
             fill=(150, 50, 50), width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_study():
    study = StudyFactory(
        title="How do these faces feel?", images_per_participant=5, votes_per_image=3, completion_code="E2E-DONE",
        consent_text="This study records which emotion you see in each face. No personal data is collected.",
    )
    for seed in range(8):
        data = face_png(seed)
        StimulusFactory(study=study, sha256=hashlib.sha256(data).hexdigest(), image=ContentFile(data, name=f"f{seed}.png"))
    return study


def wait_for_trial(page, number: int, total: int = 5) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".progress-label")).to_have_text(f"{number} of {total}")
    expect(page.locator("button.choice").first).to_be_enabled()  # enabled once the image has loaded
    # The buttons are also enabled in the HTML before trial.js runs (no-JS fallback): wait for the image itself.
    page.wait_for_function("() => { const i = document.getElementById('stimulus'); "
                           "return i && i.complete && i.naturalWidth > 0; }")


def first_trial(browser, url: str, viewport: dict):
    """A new participant at `url` (the study link): consent, Start, the first face shown -> (context, page)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="I agree").click()
    page.get_by_role("button", name="Start").click()
    wait_for_trial(page, 1)
    return context, page


def test_participant_votes_with_keys_and_mouse_resumes_after_reload_and_never_double_votes(live_server, chromium_browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    study = make_study()
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=prolific-e2e&STUDY_ID=st-1&SESSION_ID=se-1")
    expect(page.get_by_text("No personal data is collected.")).to_be_visible()
    page.get_by_role("button", name="I agree").click()
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()
    page.get_by_role("button", name="Start").click()

    wait_for_trial(page, 1)
    assert page.evaluate("document.getElementById('stimulus').naturalWidth") == 160
    page.screenshot(path=str(ARTIFACTS / "trial.png"))
    page.wait_for_timeout(300)
    page.keyboard.press("4")  # Happiness, the 4th label of RAF-DB basic-7

    wait_for_trial(page, 2)
    page.get_by_role("button", name="Sadness").click()

    wait_for_trial(page, 3)
    page.reload()
    wait_for_trial(page, 3)

    doubled = page.locator("input[name=stimulus]").get_attribute("value")
    page.get_by_role("button", name="Anger").dblclick()
    wait_for_trial(page, 4)
    page.go_back()  # back to the previous trial's address: shows the current trial again
    wait_for_trial(page, 4)

    page.keyboard.press("7")  # Neutral
    wait_for_trial(page, 5)
    page.keyboard.press("7")
    expect(page.locator("#completion-code")).to_have_text("E2E-DONE")
    page.screenshot(path=str(ARTIFACTS / "done.png"))
    context.close()

    participant = Participant.objects.get(study=study)
    assert participant.external_ids == {"PROLIFIC_PID": "prolific-e2e", "STUDY_ID": "st-1", "SESSION_ID": "se-1"}
    assert participant.user_agent_family == "Chrome" and participant.finished_at is not None
    votes = list(Vote.objects.filter(participant=participant).order_by("id").select_related("stimulus"))
    assert [v.label for v in votes] == ["Happiness", "Sadness", "Anger", "Neutral", "Neutral"]
    assert Vote.objects.filter(participant=participant, stimulus__public_id=doubled).count() == 1
    assert votes[0].response_ms >= 250  # measured from the image's load to the key press
    assert all(0 < v.response_ms < 60_000 for v in votes)


def test_trial_page_fits_a_phone_screen(live_server, chromium_browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    study = make_study()
    context = chromium_browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{study.slug}/")
    page.get_by_role("button", name="I agree").click()
    expect(page.get_by_role("heading", name="How it works")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "instructions-phone.png"))
    page.get_by_role("button", name="Start").click()
    wait_for_trial(page, 1)
    page.screenshot(path=str(ARTIFACTS / "trial-phone.png"))

    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    boxes = [button.bounding_box() for button in page.locator("button.choice").all()]
    assert len(boxes) == 7
    assert all(box["height"] >= 44 and box["width"] >= 120 for box in boxes)  # comfortable tap targets
    assert max(box["y"] + box["height"] for box in boxes) <= 844  # face and every choice without scrolling
    page.locator("button.choice").nth(1).tap()
    wait_for_trial(page, 2)
    expect(page.locator("kbd").first).to_be_hidden()  # number keys are not shown on a touch screen
    page.screenshot(path=str(ARTIFACTS / "trial2-phone.png"))
    boxes = [button.bounding_box() for button in page.locator("button.choice").all()]  # the swapped-in face too
    assert max(box["y"] + box["height"] for box in boxes) <= 844 and page.evaluate(
        "document.documentElement.scrollWidth") <= 390
    context.close()
    assert Vote.objects.filter(participant__study=study).count() == 1


def test_the_next_face_replaces_this_one_without_a_page_load_and_errors_fall_back_to_the_form(live_server,
                                                                                            chromium_browser):
    """With JavaScript the vote goes to the JSON API and the next face is swapped in (same document: a marker set on
    the window survives), with the progress, title, alt text and response time right; when the API does not record
    the vote (here: the study paused meanwhile, starters not allowed to finish), the plain form POST goes through
    and the server's page explains."""
    from playwright.sync_api import expect

    study = make_study()
    context, page = first_trial(chromium_browser, f"{live_server.url}/s/{study.slug}/", {"width": 1280, "height": 860})
    first = page.locator("input[name=stimulus]").get_attribute("value")
    page.evaluate("window.sameDocument = true")
    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    page.wait_for_timeout(200)
    page.get_by_role("button", name="Surprise").click()
    wait_for_trial(page, 2)
    assert page.evaluate("window.sameDocument === true")  # no page load
    assert [method for method, url in requests if "/votes/" in url] == ["POST"]
    assert not [url for method, url in requests if method == "POST" and url.endswith("/trial/")]
    assert page.title().startswith("Face 2 of 5")
    assert page.locator("#stimulus").get_attribute("alt") == "Face 2"
    assert page.locator("input[name=stimulus]").get_attribute("value") != first
    assert page.evaluate("document.querySelector('.trial-progress progress').value") == 1
    expect(page.locator("#trial-status")).to_have_text("")  # "Loading the image…" gone once the face is shown
    assert page.locator("#progress-label").get_attribute("aria-live") == "polite"  # screen readers hear "2 of 5"
    page.screenshot(path=str(ARTIFACTS / "trial2-desktop.png"))
    vote = Vote.objects.get(participant__study=study)
    assert (str(vote.stimulus.public_id), vote.label) == (first, "Surprise") and vote.response_ms >= 150

    type(study).objects.filter(pk=study.pk).update(status="paused", finish_when_paused=False)
    page.get_by_role("button", name="Fear").click()
    expect(page.get_by_role("heading", name="This study is not open")).to_be_visible()
    assert not page.evaluate("window.sameDocument === true")  # the form POST loaded the server's page
    assert Vote.objects.filter(participant__study=study).count() == 1
    context.close()


def test_a_vote_that_meets_a_restart_is_sent_again_and_only_then_falls_back_to_the_form(live_server, chromium_browser):
    """A vote whose first tries get a 503 (the database restarting) and no answer at all (a refused connection: the web
    server restarting) is sent again: the participant reads that it is being saved, then the next face is swapped in,
    with no error page and the vote stored once. When every try fails, the plain form POST goes through instead."""
    from playwright.sync_api import expect

    study = make_study()
    context, page = first_trial(chromium_browser, f"{live_server.url}/s/{study.slug}/", {"width": 390, "height": 844})
    page.evaluate("document.getElementById('trial-form').setAttribute('data-retry-delays', '400 400 400')")
    page.evaluate("window.sameDocument = true")
    failures = ["503", "refused"]
    tries = []

    def restarting(route):
        tries.append(route.request.post_data_json)
        if not failures:
            route.continue_()
        elif failures.pop(0) == "503":
            route.fulfill(status=503, headers={"Retry-After": "5"}, content_type="application/json",
                          body='{"detail": "The database is not reachable.", "code": "database_unavailable"}')
        else:
            route.abort("connectionrefused")

    page.route("**/api/s/*/votes/", restarting)
    page.wait_for_timeout(200)
    page.get_by_role("button", name="Surprise").click()
    expect(page.locator("#trial-status")).to_have_text("Saving your answer… The connection is slow, trying again.")
    page.screenshot(path=str(ARTIFACTS / "trial-retrying-phone.png"))
    wait_for_trial(page, 2)
    expect(page.locator("#trial-status")).to_have_text("")
    assert page.evaluate("window.sameDocument === true")  # no error page, no page load
    assert len(tries) == 3 and tries[0] == tries[1] == tries[2]  # the same vote each time
    vote = Vote.objects.get(participant__study=study)
    assert vote.label == "Surprise" and vote.response_ms == tries[0]["response_ms"]

    page.unroute("**/api/s/*/votes/")
    page.route("**/api/s/*/votes/", lambda route: route.abort("connectionrefused"))  # the API never answers
    page.get_by_role("button", name="Fear").click()
    wait_for_trial(page, 3)  # after the tries, the form POST recorded the vote and loaded the next trial
    assert not page.evaluate("window.sameDocument === true")
    assert list(Vote.objects.filter(participant__study=study).order_by("id").values_list("label", flat=True)) == [
        "Surprise", "Fear"]
    context.close()


def test_a_vote_that_hangs_says_it_is_being_saved_then_is_sent_again(live_server, chromium_browser):
    """A request that nobody refuses and nobody answers (a frozen server or database): after a few seconds the
    participant reads that the answer is being saved; the try is then given up and the vote sent again, which goes
    through, stored once."""
    from playwright.sync_api import expect

    study = make_study()
    context, page = first_trial(chromium_browser, f"{live_server.url}/s/{study.slug}/", {"width": 390, "height": 844})
    page.evaluate("""() => { const form = document.getElementById('trial-form');
        form.setAttribute('data-slow-after-ms', '300'); form.setAttribute('data-give-up-after-ms', '2500');
        form.setAttribute('data-retry-delays', '200'); window.sameDocument = true; }""")
    hung = []

    def frozen_once(route):
        if not hung:
            hung.append(route)  # never answered
        else:
            route.continue_()

    page.route("**/api/s/*/votes/", frozen_once)
    page.wait_for_timeout(200)
    page.get_by_role("button", name="Surprise").click()
    expect(page.locator("#trial-status")).to_have_text("Saving your answer…", timeout=2000)
    assert page.locator("#trial-status").get_attribute("aria-live") == "polite"
    page.screenshot(path=str(ARTIFACTS / "trial-saving-phone.png"))
    wait_for_trial(page, 2)
    expect(page.locator("#trial-status")).to_have_text("")
    assert page.evaluate("window.sameDocument === true") and len(hung) == 1
    assert list(Vote.objects.filter(participant__study=study).values_list("label", flat=True)) == ["Surprise"]
    context.close()
