"""Real services for integration tests: skip locally when missing, fail when EMOSTUDY_REQUIRE_SERVICES=1."""
import os
import shutil

import pytest

REQUIRE_SERVICES = os.environ.get("EMOSTUDY_REQUIRE_SERVICES") == "1"
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def missing_service(reason: str) -> None:
    """Fail under EMOSTUDY_REQUIRE_SERVICES=1 (CI), otherwise skip with the reason."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        missing_service("PostgreSQL: set DATABASE_URL=postgres://... (bash .ci/run does)")


def require_redis() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        missing_service("Redis: set REDIS_URL=redis://... (bash .ci/run does)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {url} does not answer: {exc}")
    return url


def require_chromium() -> str:
    if not (os.path.exists(CHROMIUM_PATH) or shutil.which(CHROMIUM_PATH)):
        missing_service(f"Chromium not found at {CHROMIUM_PATH} (apt-get install chromium)")
    return CHROMIUM_PATH
