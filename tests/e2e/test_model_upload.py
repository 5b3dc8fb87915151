"""A researcher in headless Chromium registers a TorchScript file through the Models page's form, with its
description typed into the fields, and sees the worker (Celery eager) find it valid."""
import os
import re

import pytest

from study.models import ModelVersion
from tests.checkpoints import write_tiny_torchscript
from tests.e2e.test_compare_page import login_cookie
from tests.factories import UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def test_researcher_uploads_a_torchscript_model_and_sees_it_valid(live_server, chromium_browser, tmp_path):
    from playwright.sync_api import expect

    path = write_tiny_torchscript(tmp_path / "tiny_fer.pt", outputs=3)
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([login_cookie(UserFactory(username="rita"), live_server)])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/models/")
    page.fill("#id_name", "my torchscript")
    page.set_input_files("#id_checkpoint", str(path))
    page.select_option("#id_file_type", "torchscript")
    page.fill("#id_classes", "Happiness, Sadness, Neutral")
    page.fill("#id_input_size", "16")
    page.fill("#id_training_data", "RAF-DB (photographs)")
    page.get_by_role("button", name="Upload and validate").click()
    expect(page).to_have_url(re.compile(r"/models/\d+/$"))
    expect(page.locator("#model-status")).to_have_text("Valid")
    expect(page.locator("dl.facts")).to_contain_text("Happiness, Sadness, Neutral")
    expect(page.locator("dl.facts")).to_contain_text("RAF-DB (photographs)")
    assert ModelVersion.objects.get(name="my torchscript").arch == "torchscript"
    assert errors == []
    context.close()
