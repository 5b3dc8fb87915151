"""Every page is served with a Content-Security-Policy that forbids inline scripts, and no template needs one."""
import re
from pathlib import Path

import pytest

from tests.factories import StimulusFactory, StudyFactory, UserFactory

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"href\s*=\s*[\"']javascript:", re.IGNORECASE)


def _policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_pages_carry_a_policy_without_inline_scripts(client):
    study = StudyFactory(status="live")
    StimulusFactory(study=study)
    policy = _policy(client.get(f"/s/{study.slug}/"))
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for url in ("/studies/", f"/studies/{study.slug}/", "/admin/", "/api/docs/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "'unsafe-inline'" not in _policy(response)["script-src"], url


@pytest.mark.django_db
def test_api_docs_load_their_script_from_the_site_not_inline(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/api/docs/").content.decode()
    assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page)


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_an_inline_script_or_event_handler(template):
    text = template.read_text()
    assert not INLINE_SCRIPT.search(text), "move the script into static/js/ (CSP forbids inline scripts)"
    assert not INLINE_HANDLER.search(text), "attach the handler from a static script (CSP forbids on...= attributes)"
    assert not JAVASCRIPT_URL.search(text)
