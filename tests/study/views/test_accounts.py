"""Researcher accounts: the site's own login (no is_staff needed), logout, password change and reset, invite
links, open sign-up behind a setting, and `manage.py add_researcher`."""
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.management import CommandError, call_command

from study.selectors.researchers import is_researcher
from study.services.researchers import INVITE_SALT, invite_make
from tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_non_staff_researcher_logs_in_on_the_site_and_reaches_the_researcher_pages(client):
    user = UserFactory(username="ada")
    assert not user.is_staff
    page = client.get("/accounts/login/?next=/studies/")
    assert page.status_code == 200 and b"Researcher log in" in page.content and b"/admin/" not in page.content
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-for-tests", "next": "/studies/"})
    assert response.status_code == 302 and response["Location"] == "/studies/"
    for target in ("/studies/", "/studies/new/", "/models/", "/jobs/"):
        assert client.get(target).status_code == 200, target


def test_anonymous_visitors_are_sent_to_the_site_login_not_the_admin(client):
    for target in ("/studies/", "/models/", "/jobs/", "/studies/demo/compare/"):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), target


def test_a_logged_in_user_who_is_not_a_researcher_gets_a_403_that_says_why(client):
    client.force_login(UserFactory(username="visitor", researcher=False))
    response = client.get("/studies/")
    assert response.status_code == 403
    assert b"not a researcher account" in response.content and b"add_researcher visitor" in response.content


def test_is_researcher_needs_an_active_member_of_the_group_or_a_superuser():
    assert is_researcher(UserFactory())
    assert not is_researcher(UserFactory(researcher=False))
    assert is_researcher(UserFactory(researcher=False, is_superuser=True))
    assert not is_researcher(UserFactory(is_active=False))


def test_logout_is_a_post_and_lands_on_the_home_page(client):
    client.force_login(UserFactory())
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/studies/").status_code == 302


def test_password_change_on_the_site(client):
    user = UserFactory(username="bob")
    client.force_login(user)
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post("/accounts/password_change/", {"old_password": "pw-for-tests",
                                                          "new_password1": "a-much-longer-pass-42",
                                                          "new_password2": "a-much-longer-pass-42"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-much-longer-pass-42")


def test_password_reset_mails_a_link_that_sets_a_new_password(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = UserFactory(username="carol", email="carol@example.org")
    response = client.post("/accounts/password_reset/", {"email": "carol@example.org"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and b"Choose a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "fresh-pass-for-carol-9",
                                                    "new_password2": "fresh-pass-for-carol-9"})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("fresh-pass-for-carol-9")


def test_console_email_backend_by_default():
    from django.conf import settings

    assert settings.EMAIL_BACKEND in ("django.core.mail.backends.console.EmailBackend",
                                      "django.core.mail.backends.locmem.EmailBackend")  # the test runner swaps it


def test_superuser_makes_an_invite_link_that_creates_a_researcher(client):
    boss = UserFactory(username="boss", is_superuser=True)
    client.force_login(boss)
    page = client.post("/accounts/invite/", {"email": "new@example.org"})
    link = re.search(r'value="http://testserver(/accounts/join/[^"]+/)"', page.content.decode()).group(1)
    client.logout()
    form = client.get(link)
    assert form.status_code == 200 and b"new@example.org" in form.content
    response = client.post(link, {"username": "newbie", "email": "new@example.org",
                                  "password1": "long-enough-pass-77", "password2": "long-enough-pass-77"})
    assert response.status_code == 302 and response["Location"] == "/studies/"
    newbie = get_user_model().objects.get(username="newbie")
    assert is_researcher(newbie) and not newbie.is_staff
    assert client.get("/studies/").status_code == 200  # logged in straight away


def test_only_a_superuser_can_make_invites(client):
    client.force_login(UserFactory())
    assert client.get("/accounts/invite/").status_code == 302


@pytest.mark.parametrize("token", ["garbage", signing.dumps({"email": ""}, salt="another-salt")])
def test_a_forged_or_damaged_invite_is_a_400_with_a_message(client, token):
    response = client.get(f"/accounts/join/{token}/")
    assert response.status_code == 400 and b"not valid" in response.content


def test_an_expired_invite_says_so(client, settings):
    token = invite_make(email="")
    settings.RESEARCHER_INVITE_DAYS = -1
    response = client.get(f"/accounts/join/{token}/")
    assert response.status_code == 400 and b"expired" in response.content
    assert signing.loads(token, salt=INVITE_SALT)  # the token itself is intact


def test_open_signup_only_when_the_setting_allows_it(client, settings):
    settings.RESEARCHER_SIGNUP_OPEN = False
    assert client.get("/accounts/signup/").status_code == 404
    assert b"/accounts/signup/" not in client.get("/accounts/login/").content
    settings.RESEARCHER_SIGNUP_OPEN = True
    assert b"/accounts/signup/" in client.get("/accounts/login/").content
    response = client.post("/accounts/signup/", {"username": "open", "password1": "long-enough-pass-77",
                                                 "password2": "long-enough-pass-77"})
    assert response.status_code == 302
    assert is_researcher(get_user_model().objects.get(username="open"))
    bad = client.post("/accounts/signup/", {"username": "", "password1": "x", "password2": "y"})
    assert bad.status_code == 400


def test_add_researcher_command_creates_a_non_staff_researcher_and_prints_the_password_once(monkeypatch):
    out = io.StringIO()
    call_command("add_researcher", "dora", "--email", "dora@example.org", stdout=out)
    password = re.search(r"password: (\S+)", out.getvalue()).group(1)
    dora = get_user_model().objects.get(username="dora")
    assert dora.check_password(password) and is_researcher(dora) and not dora.is_staff
    again = io.StringIO()
    call_command("add_researcher", "dora", stdout=again)
    assert "password unchanged" in again.getvalue()
    monkeypatch.setenv("DORA_PW", "from-the-env-123")
    call_command("add_researcher", "dora", "--password-from-env", "DORA_PW", stdout=io.StringIO())
    dora.refresh_from_db()
    assert dora.check_password("from-the-env-123")


def test_add_researcher_errors_are_command_errors(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(CommandError, match="empty or not set"):
        call_command("add_researcher", "x", "--password-from-env", "NOPE")
    with pytest.raises(CommandError, match="username"):
        call_command("add_researcher", "   ")


def test_researcher_nav_has_studies_models_jobs_logout_and_admin_only_for_staff(client):
    client.force_login(UserFactory())
    html = client.get("/studies/").content.decode()
    for text in ('href="/studies/"', 'href="/models/"', 'href="/jobs/"', "Log out"):
        assert text in html
    assert 'href="/admin/"' not in html
    client.force_login(UserFactory(is_superuser=True))
    assert 'href="/admin/"' in client.get("/models/").content.decode()


def test_the_demo_study_is_readable_by_every_researcher_but_only_its_owner_changes_it(client):
    demo = StudyFactory(slug="demo", readable_by_all_researchers=True)
    client.force_login(UserFactory())
    assert client.get("/studies/demo/compare/").status_code == 200
    assert client.get("/studies/demo/").status_code == 404
    assert client.post("/studies/demo/simulated/", {"include": "0"}).status_code == 404
    demo.refresh_from_db()
    assert demo.include_simulated


def test_a_new_researcher_sees_the_shared_demo_on_the_studies_page(client):
    StudyFactory(slug="demo", title="Demo study", readable_by_all_researchers=True)
    StudyFactory(slug="private", title="Someone else's study")
    client.force_login(UserFactory())
    html = client.get("/studies/").content.decode()
    assert 'id="shared-studies"' in html and 'href="/studies/demo/compare/"' in html
    assert "Someone else" not in html and 'id="new-study"' in html
