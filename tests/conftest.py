"""Suite-wide fixtures: every test writes media into its own temporary MEDIA_ROOT, with an empty cache and a
fast password hasher."""
import pytest


@pytest.fixture
def eager_celery():
    """Tasks run in the calling process (no broker); modules opt in with pytest.mark.usefixtures."""
    from webapp.celery import app

    app.conf.task_always_eager, before = True, app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (study languages, ceilings, "is the study full" verdicts): no state leaks
    between tests."""
    from django.core.cache import cache

    from study.selectors.participants import _FULL_VERDICTS

    cache.clear()
    _FULL_VERDICTS.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Tests create many users: a fast hasher (production keeps Django's default PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def chromium_browser():
    """A headless Debian Chromium driven by Playwright (no browser download)."""
    from tests.services import CHROMIUM_ARGS, require_chromium

    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
