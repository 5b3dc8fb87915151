"""A newcomer's first ten minutes in headless Chromium: fresh database -> seed_demo -> landing page -> log in as a
non-staff researcher -> the demo's comparison is full (simulated panel) -> create a study -> upload a zip with a
manifest -> launch -> predict -> the comparison shows cards and never `nan`. Screenshots of every page touched,
at desktop width and at 390 px, go to test-artifacts/newcomer/."""
import csv
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from study.models import ModelVersion, Stimulus, Study
from tests.checkpoints import write_tiny_checkpoint

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "newcomer"
PASSWORD = "newcomer-pass-2024"


@pytest.fixture
def eager_celery():
    from webapp.celery import app

    app.conf.task_always_eager, before = True, app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


def faces_zip(n: int = 6) -> bytes:
    """Synthetic faces and a manifest.csv with their labels and valence/arousal, zipped as a researcher would."""
    from ml.data.synthetic import generate_faces

    buffer = io.BytesIO()
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["file", "label", "valence", "arousal"])
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, face in enumerate(generate_faces(n, seed=7)):
            image = io.BytesIO()
            face.image.save(image, format="PNG")
            archive.writestr(f"faces/face_{i}.png", image.getvalue())
            writer.writerow([f"face_{i}.png", face.label, f"{face.valence:.3f}", f"{face.arousal:.3f}"])
        archive.writestr("manifest.csv", rows.getvalue())
    return buffer.getvalue()


def snap(page, name: str) -> None:
    """Full-page screenshots at 1280 px and at 390 px; also checks nothing overflows sideways at 390 px."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(100)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{name}: the page is {overflow}px wider than a 390px phone"
    page.set_viewport_size({"width": 1280, "height": 900})


def no_nan(page) -> None:
    assert not re.search(r"\bnan\b", page.inner_text("body"), re.IGNORECASE)


def test_newcomer_from_seed_demo_to_a_predicted_study(live_server, chromium_browser, tmp_path, eager_celery,
                                                      monkeypatch):
    from playwright.sync_api import expect

    call_command("seed_demo", "--count", "30", stdout=io.StringIO(), stderr=io.StringIO())
    monkeypatch.setenv("NEWCOMER_PW", PASSWORD)
    call_command("add_researcher", "newcomer", "--password-from-env", "NEWCOMER_PW", stdout=io.StringIO())
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    call_command("register_model", str(checkpoint), "--name", "tiny-model", "--owner", "admin", "--public",
                 stdout=io.StringIO())
    assert ModelVersion.objects.get(name="tiny-model").status == ModelVersion.Status.VALID

    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # The landing page says what this is and where to go.
    page.goto(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("EmoStudy")
    for tile in ("#tile-take-part", "#tile-compare", "#tile-researchers", "#tile-api"):
        expect(page.locator(tile)).to_be_visible()
    snap(page, "01-landing")

    # Log in on the site's own page as a researcher without admin rights.
    page.click("#tile-researchers >> text=Researcher log in")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    snap(page, "02-login")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.r-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/studies/$"))
    nav = page.locator("nav.site-nav")
    for link in ("Studies", "Models", "Jobs", "Log out"):
        expect(nav.get_by_text(link, exact=True)).to_be_visible()
    expect(nav.get_by_text("Admin", exact=True)).to_have_count(0)
    snap(page, "03-studies")

    # The demo's comparison is full from the first minute (simulated panel, flagged).
    page.click("#shared-studies a")
    expect(page.locator(".card").first).to_be_visible()
    expect(page.locator("#simulated-note")).to_contain_text("simulated participants")
    no_nan(page)
    snap(page, "04-demo-compare")

    # Create a study with the default label set of the form.
    page.click("nav.site-nav >> text=Studies")
    page.click("#new-study")
    page.fill("input[name=title]", "My first study")
    page.fill("input[name=slug]", "my-first")
    raf = page.locator("select[name=label_set] option", has_text="RAF-DB basic-7").get_attribute("value")
    page.select_option("select[name=label_set]", raf)  # the label set the registered model serves
    snap(page, "05-new-study")
    page.click("form.r-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/studies/my-first/$"))

    # Upload a zip with a manifest.
    page.set_input_files("input[name=files]", files=[{"name": "faces.zip", "mimeType": "application/zip",
                                                      "buffer": faces_zip(6)}])
    page.click("#upload-panel button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Upload finished")
    study = Study.objects.get(slug="my-first")
    assert Stimulus.objects.filter(study=study).count() == 6
    snap(page, "06-study-uploaded")

    # Launch, then predict with the registered model.
    page.click("#status-panel button:has-text('Launch')")
    expect(page.locator("#study-status")).to_have_text("Live")
    page.select_option("#predictions select[name=model]", str(ModelVersion.objects.get(name="tiny-model").pk))
    page.click("#predictions button:has-text('Predict all images')")
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#job-state")).to_have_text(re.compile("Done", re.I), timeout=30_000)
    snap(page, "07-job")
    page.click("nav.site-nav >> text=Jobs")
    expect(page.locator("#job-table tbody tr")).to_have_count(1)
    snap(page, "08-jobs")
    page.click("nav.site-nav >> text=Models")
    expect(page.locator("h1")).to_have_text("Models")
    snap(page, "09-models")

    # Before anyone votes, the comparison shows each image with its prediction and says votes are missing.
    page.goto(live_server.url + "/studies/my-first/compare/")
    expect(page.locator(".card")).to_have_count(6)
    expect(page.locator("#few-votes")).to_contain_text("No image has votes yet")
    no_nan(page)

    # One participant takes the study (a second browser, as on a phone).
    phone = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    participant = phone.new_page()
    participant.goto(live_server.url + "/s/my-first/?PROLIFIC_PID=newcomer-test")
    participant.get_by_role("button", name="I agree").click()
    participant.get_by_role("button", name="Start").click()
    for number in range(1, 7):
        expect(participant.locator(".progress-label")).to_have_text(f"{number} of 6")
        participant.wait_for_function(
            "() => { const i = document.getElementById('stimulus'); return i && i.complete && i.naturalWidth > 0; }")
        participant.wait_for_timeout(250)
        participant.keyboard.press("4")  # Happiness
    expect(participant.locator("#completion-code")).to_be_visible()
    phone.close()

    # The comparison now has a headline, a card per image, the few-votes warning and never `nan`.
    page.goto(live_server.url + "/studies/my-first/compare/")
    expect(page.locator(".card")).to_have_count(6)
    headline = re.compile(r"tiny-model picks the crowd's top emotion on \d+% of 6 images")
    expect(page.locator(".headline")).to_contain_text(headline)
    expect(page.locator("#few-votes")).to_contain_text("About 10 votes per image is enough")
    no_nan(page)
    snap(page, "10-compare")
    page.click("nav.tabs >> text=Uncertainty")
    no_nan(page)
    snap(page, "11-compare-uncertainty")

    page.goto(live_server.url + "/studies/demo/compare/?tab=uncertainty")
    no_nan(page)

    # Log out lands on the home page.
    page.click("nav.site-nav >> text=Log out")
    expect(page).to_have_url(live_server.url + "/")
    assert errors == []
    context.close()
