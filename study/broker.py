"""Talking to the Celery broker from the web process, with hard time limits.

A hung broker (a frozen Redis: the kernel still accepts connections, nothing ever answers) must not hold a
web worker. Every check and every publish from the web uses its own connection whose socket operations
(connect, read, write) time out after BROKER_WEB_TIMEOUT seconds, and at most one retry: a web request
waits at most about 3 s for the broker before answering 503. The Celery worker keeps the longer timeouts
of CELERY_BROKER_TRANSPORT_OPTIONS (its blocking reads are long polls).
"""
from __future__ import annotations

from django.conf import settings

from study.errors import BrokerUnavailable


def _timeout() -> float:
    return float(getattr(settings, "BROKER_WEB_TIMEOUT", 1.0))


def _web_connection(timeout: float):
    from webapp.celery import app

    options = {**(app.conf.broker_transport_options or {}), "socket_timeout": timeout,
               "socket_connect_timeout": timeout, "retry_on_timeout": False}
    if not str(app.conf.broker_url or "").startswith(("redis://", "rediss://")):
        options = dict(app.conf.broker_transport_options or {})  # other transports know no socket options
    return app.connection_for_write(transport_options=options, connect_timeout=timeout)


def broker_ping(timeout: float | None = None) -> None:
    """Raise BrokerUnavailable unless the broker answers within `timeout` seconds (a round trip, not only a
    TCP connect: a frozen Redis accepts connections)."""
    from webapp.celery import app

    if app.conf.task_always_eager:
        return
    timeout = _timeout() if timeout is None else timeout
    url = str(app.conf.broker_url or "")
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry_on_timeout=False, retry=None)
            try:
                client.ping()
            finally:
                client.close()
        else:
            with _web_connection(timeout) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
    except Exception as exc:  # redis/kombu raise transport-specific errors
        raise BrokerUnavailable(
            f"the task queue (Celery broker) is unreachable, so no job was started: {exc.__class__.__name__}. "
            "Start Redis (or the embedded worker) and try again."
        ) from None


def task_publish(task, *, args: list, what: str = "the job"):
    """Send `task` with `args` through a short-timeout connection; BrokerUnavailable if it cannot be sent
    within about 2 x BROKER_WEB_TIMEOUT. Returns Celery's AsyncResult."""
    timeout = _timeout()
    try:
        with _web_connection(timeout) as connection:
            return task.apply_async(args=args, connection=connection, retry=True, retry_policy={
                "max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2})
    except Exception as exc:  # kombu raises transport-specific errors
        raise BrokerUnavailable(f"{what} could not be queued ({exc.__class__.__name__})") from None
