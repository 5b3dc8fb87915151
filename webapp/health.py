"""Health endpoints for orchestrators: /healthz (the process answers) and /readyz (it can serve: DB, broker).

Both are cheap, unauthenticated and never cached. /readyz bounds each check (READYZ_TIMEOUT seconds) so a
hung dependency makes it answer 503 quickly instead of hanging the probe and the worker that serves it.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request):
    """Liveness: no I/O at all, so a slow database never gets a healthy web process restarted."""
    return JsonResponse({"status": "ok"})


def _check_database(timeout: float) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET statement_timeout = %s", [int(timeout * 1000)])
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.execute("SET statement_timeout = 0")
        else:
            cursor.execute("SELECT 1")


def _check_broker(timeout: float) -> None:
    from study.jobs import broker_check

    broker_check(timeout)


@never_cache
@require_GET
def readyz(request):
    """Readiness: the database answers a query and the Celery broker answers a ping, each within the timeout."""
    timeout = float(getattr(settings, "READYZ_TIMEOUT", 1.0))
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        started = time.monotonic()
        try:
            check(timeout)
            checks[name] = {"ok": True}
        except Exception as exc:  # any failure means "not ready"; the class name says which
            ready = False
            checks[name] = {"ok": False, "error": exc.__class__.__name__}
        checks[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status=200 if ready else 503)
