"""`make run` (run_embedded) serves with DEBUG off and needs no configuration: a secret key generated once into
var/, the local host names, cookies that work over plain http. Whatever the environment sets wins."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.embedded import embedded_environment, served_host_names
from webapp.secret_key import persisted_secret_key

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_default_turns_debug_off_and_fills_in_what_that_needs(tmp_path):
    env = embedded_environment({}, "127.0.0.1", tmp_path)
    assert env["DEBUG"] == "false"
    assert env["SECRET_KEY_FILE"] == str(tmp_path / "secret_key")
    assert {"127.0.0.1", "localhost"} <= set(env["ALLOWED_HOSTS"].split(","))
    assert env["SECURE_COOKIES"] == "false"


def test_the_address_it_serves_on_is_an_allowed_host():
    assert "192.168.1.5" in served_host_names("192.168.1.5")
    assert "[::1]" in served_host_names("::1")
    assert len(served_host_names("0.0.0.0")) > 3  # this machine's name and addresses too


def test_what_the_environment_sets_wins(tmp_path):
    env = embedded_environment({"DEBUG": "true"}, "127.0.0.1", tmp_path)
    assert env == {"DEBUG": "true"}  # developers: Django's debug pages, nothing else changed
    env = embedded_environment({"SECRET_KEY": "k" * 60, "ALLOWED_HOSTS": "lab.example.org"}, "0.0.0.0", tmp_path)
    assert "SECRET_KEY_FILE" not in env and env["ALLOWED_HOSTS"] == "lab.example.org"


def test_the_secret_key_is_generated_once_privately_and_then_reused(tmp_path):
    key_file = tmp_path / "var" / "secret_key"
    key = persisted_secret_key(key_file)
    assert len(key) >= 50 and persisted_secret_key(key_file) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["secret_key"]  # no draft left behind


def test_an_empty_key_file_is_refused_not_used(tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="delete it"):
        persisted_secret_key(tmp_path / "secret_key")


@pytest.mark.slow
def test_the_settings_load_and_check_clean_with_the_embedded_environment(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL")}
    env = embedded_environment(base, "127.0.0.1", tmp_path)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    probe = ("import django; django.setup(); from django.conf import settings as s; "
             "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.SECRET_KEY == open(s.BASE_DIR / '" + str(tmp_path)
             + "/secret_key').read().strip(), sorted(s.ALLOWED_HOSTS)[:2])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "DJANGO_SETTINGS_MODULE": "webapp.settings"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:3] == ["False", "False", "True"]
    check = subprocess.run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=env)
    assert check.returncode == 0, check.stderr + check.stdout
