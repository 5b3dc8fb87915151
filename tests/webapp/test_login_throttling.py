"""Repeated wrong passwords lock the client out of every password login (API token, admin) for a while."""
import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def researcher(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    user = UserFactory(username="rita", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _token(client, password, ip="203.0.113.5"):
    return client.post("/api/token/", {"username": "rita", "password": password}, REMOTE_ADDR=ip)


def _admin_login(client, password, ip="203.0.113.5"):
    return client.post("/admin/login/?next=/admin/", {"username": "rita", "password": password}, REMOTE_ADDR=ip)


def test_token_endpoint_locks_out_after_the_failure_limit_even_with_the_right_password(client, researcher):
    assert _token(client, PASSWORD).status_code == 200
    for _ in range(3):
        assert _token(client, "wrong").status_code == 400
    locked = _token(client, PASSWORD)
    assert locked.status_code == 429
    assert "token" not in locked.content.decode()


def test_lockout_is_per_client_address(client, researcher):
    for _ in range(3):
        _token(client, "wrong", ip="203.0.113.5")
    assert _token(client, PASSWORD, ip="203.0.113.5").status_code == 429
    assert _token(client, PASSWORD, ip="198.51.100.7").status_code == 200


def test_admin_login_page_is_throttled_too(client, researcher):
    assert _admin_login(client, "wrong").status_code == 200  # the form again, with an error
    for _ in range(2):
        _admin_login(client, "wrong")
    response = _admin_login(client, PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_failures_from_one_address_count_across_login_forms(client, researcher):
    _token(client, "wrong")
    _admin_login(client, "wrong")
    _token(client, "wrong")
    assert _admin_login(client, PASSWORD).status_code == 429


def test_a_successful_session_login_resets_the_count(client, researcher):
    for _ in range(2):
        _admin_login(client, "wrong")
    assert _admin_login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _admin_login(client, "wrong")
    assert _admin_login(client, PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(client, researcher, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(3):
        client.post("/api/token/", {"username": "rita", "password": "wrong"}, REMOTE_ADDR="10.0.0.2",
                    HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.9")
    other = client.post("/api/token/", {"username": "rita", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2",
                        HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert other.status_code == 200  # a different client behind the same proxy is not locked out
    same = client.post("/api/token/", {"username": "rita", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert same.status_code == 429


def test_the_site_login_page_is_throttled_too(client, researcher):
    for _ in range(3):
        client.post("/accounts/login/", {"username": "rita", "password": "wrong"}, REMOTE_ADDR="203.0.113.5")
    response = client.post("/accounts/login/", {"username": "rita", "password": PASSWORD}, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
