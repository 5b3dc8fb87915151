"""With DEBUG off (make run, production) static files are served from collectstatic's output: gzip when the
browser accepts it (Plotly's 4.8 MB bundle travels as 1.5 MB) and, under hashed names, cached for good."""
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory

from study.staticfiles import PLOTLY_STATIC_PATH, plotly_bundle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic with the storage the settings choose when DEBUG is off, into a temporary STATIC_ROOT."""
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "localhost"}
    probe = "from webapp import settings as s; print(s.STORAGES['staticfiles']['BACKEND'])"
    backend = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True, timeout=120).stdout.strip()
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": backend}}
    call_command("collectstatic", "--noinput", verbosity=0)
    return settings.STATIC_ROOT


def _serve(path: str, **headers):
    from whitenoise.middleware import WhiteNoiseMiddleware

    middleware = WhiteNoiseMiddleware(lambda request: HttpResponse("not static", status=404))
    return middleware(RequestFactory().get(path, **headers))


def test_plotly_is_served_gzip_under_a_hashed_name_cached_for_good(collected):
    from django.contrib.staticfiles.storage import staticfiles_storage

    url = staticfiles_storage.url(PLOTLY_STATIC_PATH)
    assert url != "/static/" + PLOTLY_STATIC_PATH and url.endswith(".js")  # a content hash in the name
    response = _serve(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip" and "Accept-Encoding" in response["Vary"]
    assert gzip.decompress(body) == plotly_bundle().read_bytes()
    assert len(body) * 3 < plotly_bundle().stat().st_size
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]


def test_a_client_without_gzip_gets_the_plain_bytes_and_css_is_compressed_too(collected):
    from django.contrib.staticfiles.storage import staticfiles_storage

    url = staticfiles_storage.url(PLOTLY_STATIC_PATH)
    plain = _serve(url)
    assert "Content-Encoding" not in plain and b"".join(plain.streaming_content) == plotly_bundle().read_bytes()
    css = _serve(staticfiles_storage.url("study/emostudy.css"), HTTP_ACCEPT_ENCODING="gzip")
    assert css["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(css.streaming_content)) == (ROOT / "static/study/emostudy.css").read_bytes()


def test_before_any_collectstatic_pages_render_with_plain_static_urls(settings, tmp_path):
    """Scripts and benchmarks that turn DEBUG off without collecting get plain URLs, never a 500."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    settings.STATIC_ROOT = tmp_path / "empty"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "study.staticfiles.HashedStaticFilesStorage"}}
    assert staticfiles_storage.url("study/emostudy.css") == "/static/study/emostudy.css"
