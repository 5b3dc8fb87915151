"""Health endpoints for orchestrators: /healthz (the process answers) and /readyz (it can serve: DB, broker).

Both are cheap, unauthenticated and never cached. /readyz bounds each check (READYZ_TIMEOUT seconds) so a
hung dependency makes it answer 503 quickly instead of hanging the probe and the worker that serves it.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

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


# The database check runs in a thread of its own, waited for at most the timeout: statement_timeout is the server's,
# so a frozen database (SIGSTOP, a hung host: nothing refuses, nothing answers) held the probe for as long as the
# freeze lasted (10 s in bench/load.py's freeze-postgres run). One check at a time per process: while an earlier
# one still hangs, probes answer 503 at once instead of piling up threads and connections.
_database_checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-database")
_pending_lock = threading.Lock()
_pending: Future | None = None


def _query_database(timeout: float) -> None:
    """SELECT 1 on this thread's own connection, closed again (a connection a restart broke is never reused)."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = %s", [int(timeout * 1000)])
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def _check_database(timeout: float) -> None:
    global _pending
    with _pending_lock:
        if _pending is None or _pending.done():
            _pending = _database_checks.submit(_query_database, timeout)
        pending = _pending
    pending.result(timeout=timeout)  # TimeoutError when the database does not answer in time


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
