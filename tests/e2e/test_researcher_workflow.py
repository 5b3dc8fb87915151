"""A non-staff researcher in headless Chromium: the new-study form preselects the label set the registered model
serves, a zip upload uses its manifest.csv, a preview runs as a test participant, launch, one real participant,
predict with a tiny real checkpoint (Celery eager), and the comparison page shows cards and no `nan`."""
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from study.models import Participant, Prediction, Stimulus, Study
from tests.checkpoints import write_tiny_checkpoint
from tests.e2e.test_compare_page import login_cookie
from tests.e2e.test_participant_flow import face_png
from tests.factories import LabelSetFactory, ModelVersionFactory, UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def eager_celery():
    from webapp.celery import app

    app.conf.task_always_eager, before = True, app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


def faces_zip() -> bytes:
    manifest = "filename,label,valence,arousal,is_gold\n" + "".join(
        f"faces/f{i}.png,{'Sadness' if i % 2 else 'Happiness'},0.1,0.2,{int(i == 0)}\n" for i in range(6))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(6):
            archive.writestr(f"faces/f{i}.png", face_png(i))
        archive.writestr("faces/manifest.csv", manifest)
    return buffer.getvalue()


def answer_all(page) -> None:
    from playwright.sync_api import expect

    while "/done/" not in page.url:
        expect(page.locator("button.choice").first).to_be_enabled()
        page.wait_for_function("() => document.getElementById('stimulus').complete")
        current, total = map(int, re.findall(r"\d+", page.locator("#progress-label").inner_text()))
        page.locator("button.choice").nth(3).click()  # Happiness: right on the gold item
        if current == total:  # the last face: the done page loads
            expect(page).to_have_url(re.compile("/done/$"))
        else:  # the next face replaces this one in place (trial.js)
            expect(page.locator("#progress-label")).to_have_text(f"{current + 1} of {total}")
    expect(page.locator("h1")).to_have_text(re.compile("Thank you"))


def test_researcher_creates_uploads_previews_launches_predicts_and_compares(
        live_server, chromium_browser, tmp_path, eager_celery):
    from playwright.sync_api import expect

    LabelSetFactory()  # RAF-DB basic-7 (transactional tests flush the seeded rows)
    LabelSetFactory(name="AffectNet-8", labels=["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust",
                                                "Anger", "Contempt"])
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    ModelVersionFactory(name="tiny-demo", is_demo=True, checkpoint=ContentFile(checkpoint.read_bytes(), name="t.pt"))
    researcher = UserFactory(username="newcomer", is_staff=False)
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([login_cookie(researcher, live_server)])
    page = context.new_page()

    page.goto(f"{live_server.url}/studies/new/")
    selected = page.locator("select[name=label_set] option:checked")
    expect(selected).to_contain_text("RAF-DB basic-7")
    expect(selected).to_contain_text("served by tiny-demo")
    expect(page.locator("select[name=label_set] option", has_text="AffectNet-8")).to_contain_text(
        "no registered model serves it")
    page.fill("input[name=title]", "My first study")
    page.fill("input[name=slug]", "first")
    page.fill("input[name=images_per_participant]", "5")
    page.get_by_role("button", name="Create study").click()
    expect(page).to_have_url(re.compile(r"/studies/first/$"))

    page.set_input_files("input[name=files]", {"name": "faces.zip", "mimeType": "application/zip",
                                               "buffer": faces_zip()})
    page.locator("#upload-panel button[type=submit]").click()
    expect(page.locator("#manifest-note")).to_contain_text("Manifest used: faces/manifest.csv in faces.zip")
    assert Stimulus.objects.filter(study__slug="first", is_gold=True).count() == 1
    expect(page.locator("#launch-warnings")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "researcher-study-page.png"), full_page=True)

    with context.expect_page() as opened:
        page.locator("#preview-button").click()
    preview = opened.value
    expect(preview.locator("#preview-note")).to_be_visible()
    preview.get_by_role("button", name="I agree").click()
    expect(preview.locator("#test-badge")).to_be_visible()
    preview.get_by_role("button", name="Start").click()
    answer_all(preview)
    preview.close()
    assert Participant.objects.get(study__slug="first").is_test

    page.reload()
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("#study-status")).to_have_text("Live")

    participant = chromium_browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    participant.goto(f"{live_server.url}/s/first/?PROLIFIC_PID=p1")
    participant.get_by_role("button", name="I agree").click()
    participant.get_by_role("button", name="Start").click()
    answer_all(participant)

    page.goto(f"{live_server.url}/studies/first/predict/")
    page.get_by_role("button", name="Predict all images").click()
    expect(page.locator("#job-state")).to_have_text("Done")
    assert Prediction.objects.filter(stimulus__study__slug="first").count() == 6

    page.goto(f"{live_server.url}/studies/first/edit/")
    expect(page.locator("#locked-note")).to_be_visible()  # live: label set, slug, images per participant locked
    page.screenshot(path=str(ARTIFACTS / "researcher-edit-live.png"), full_page=True)
    page.goto(f"{live_server.url}/studies/first/compare/")
    expect(page.locator(".card").first).to_be_visible()
    assert page.locator(".card").count() >= 4  # at least the four regular images the participant voted on
    assert "nan" not in page.locator("main").inner_text().lower().split()  # one vote per image: "not enough votes"
    assert Study.objects.get(slug="first").participants.filter(is_test=False).count() == 1
    context.close()
