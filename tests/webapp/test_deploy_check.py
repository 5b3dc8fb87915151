"""`manage.py check --deploy` is clean with the documented production environment, and not without it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "production.env.example"
pytestmark = pytest.mark.slow


def _production_env() -> dict:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    values["SECRET_KEY"] = "x7Kq2mP9vR4tY8wZ1nB5cF3hJ6kL0oQ2sU4vX7zA9dG1jM3pS5"  # the <...> placeholder filled in
    env = {k: v for k, v in os.environ.items() if k not in values and not k.startswith(("SECURE_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    return {**env, **values, "DATABASE_URL": "sqlite:////tmp/unused.sqlite3"}


def _check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = _check_deploy(_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_tls_settings_are_left_out():
    env = _production_env()
    for key in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_COOKIES"):
        env.pop(key)
    env["SECURE_COOKIES"] = "false"
    result = _check_deploy(env)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012"):
        assert warning in result.stderr + result.stdout
