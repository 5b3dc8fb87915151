"""The one seam where the web side hands work to Celery workers.

Services call these functions; they publish tasks *by name* (the task objects are looked up in the
Celery app's registry), so no service imports study.tasks and the tasks, which call services, close no
import cycle. Everything here runs in the web process and never imports torch.

Hard time limits: a hung broker (a frozen Redis: the kernel still accepts connections, nothing answers)
must not hold a web worker. Checks and publishes use their own connection whose socket operations time
out after BROKER_WEB_TIMEOUT seconds, with at most one retry, so a request waits about 3 s at most before
its 503. The Celery worker keeps the longer timeouts of CELERY_BROKER_TRANSPORT_OPTIONS.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

from study.errors import BrokerUnavailable

PREDICT_STIMULI = "study.tasks.predict_stimuli"
VALIDATE_MODEL_VERSION = "study.tasks.validate_model_version"
ANALYSE_DEMO_UPLOAD = "study.tasks.analyse_demo_upload"
IMPORT_UPLOAD_BATCH = "study.tasks.import_upload_batch"
FIRST_RUN_BOOTSTRAP = "study.tasks.first_run_bootstrap"


def _app():
    from webapp.celery import app

    return app


def _timeout() -> float:
    from django.conf import settings

    return float(getattr(settings, "BROKER_WEB_TIMEOUT", 1.0))


def _is_redis(app) -> bool:
    return str(app.conf.broker_url or "").startswith(("redis://", "rediss://"))


def _web_connection(app, timeout: float):
    """A broker connection whose every socket operation gives up after `timeout` seconds."""
    options = dict(app.conf.broker_transport_options or {})
    if _is_redis(app):
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False)
    return app.connection_for_write(transport_options=options, connect_timeout=timeout)


def broker_check(timeout: float | None = None) -> None:
    """Raise BrokerUnavailable unless the broker answers within `timeout` seconds (a round trip, not only a
    TCP connect: a frozen Redis still accepts connections). Eager mode: always fine."""
    app = _app()
    if app.conf.task_always_eager:
        return
    timeout = _timeout() if timeout is None else timeout
    try:
        if _is_redis(app):
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retries: redis-py retries a timed-out command 3 times by default, 4x the wait.
            client = redis.Redis.from_url(str(app.conf.broker_url), socket_timeout=timeout,
                                          socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
            try:
                client.ping()
            finally:
                client.close()
        else:
            with _web_connection(app, timeout) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
    except Exception as exc:  # redis/kombu raise transport-specific errors
        raise BrokerUnavailable(
            f"the task queue (Celery broker) is unreachable, so no job was started: {exc.__class__.__name__}. "
            "Start Redis (or the embedded worker) and try again."
        ) from None


def waiting_task_args(task_name: str) -> list[list]:
    """The arguments of `task_name`'s messages still waiting in the broker, not yet fetched by any worker.

    The embedded runner queues unfinished jobs again at start-up because its filesystem broker drops the message of a
    task its stopped worker had fetched; a message that was never fetched still waits (in the broker's folder, or in
    Redis's queue lists) and comes by itself, so it must not be queued a second time (two runs of one job at once).
    """
    found = (_message_args(raw, task_name) for raw in _waiting_messages(_app()))
    return [args for args in found if args is not None]


def ids_not_waiting(task_name: str, ids) -> list[int]:
    """`ids` (of jobs whose task takes the id as its one argument) less those whose message still waits."""
    waiting = {args[0] for args in waiting_task_args(task_name) if args}
    return [pk for pk in ids if pk not in waiting]


def _waiting_messages(app) -> list:
    url = str(app.conf.broker_url or "")
    if _is_redis(app):
        import redis

        routes = (app.conf.task_routes or {}).values()
        queues = {app.conf.task_default_queue or "celery"} | {route["queue"] for route in routes if "queue" in route}
        client = redis.Redis.from_url(url, socket_timeout=_timeout() * 3)
        try:
            return [raw for queue in sorted(queues) for raw in client.lrange(queue, 0, -1)]
        finally:
            client.close()
    if not url.startswith("filesystem://"):
        return []
    folder = Path((app.conf.broker_transport_options or {}).get("data_folder_in", ""))
    messages = []
    for path in sorted(folder.glob("*.msg")) if folder.is_dir() else []:
        try:
            messages.append(path.read_bytes())
        except OSError:
            continue  # fetched meanwhile
    return messages


def _message_args(raw, task_name: str) -> list | None:
    """The positional arguments of a raw kombu message of `task_name`; None for any other message."""
    try:
        message = json.loads(raw)
        if message["headers"].get("task") != task_name:
            return None
        return json.loads(base64.b64decode(message["body"]))[0]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None  # not a task message of ours


# One quick retry (a pooled connection a Redis restart closed): with the socket timeout, ~2 x timeout at most.
_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def _publish(task_name: str, args: list) -> str:
    """Send one task; returns its id. Raises whatever the transport raises when the broker fails or hangs."""
    app = _app()
    if task_name not in app.tasks:
        app.loader.import_default_modules()  # Celery's autodiscovery registers study.tasks (which imports no torch)
    task = app.tasks[task_name]  # a registered task keeps eager mode and the task routes working
    with _web_connection(app, _timeout()) as connection:
        result = task.apply_async(args=args, connection=connection, retry=True, retry_policy=_RETRY_POLICY)
    return result.id or ""


def enqueue_model_validation(model_version_id: int) -> str:
    """Queue the worker-side check of a registered checkpoint (study.tasks.validate_model_version)."""
    return _publish(VALIDATE_MODEL_VERSION, [model_version_id])


def enqueue_prediction_job(job_id: int) -> str:
    """Queue a prediction job (study.tasks.predict_stimuli)."""
    return _publish(PREDICT_STIMULI, [job_id])


def enqueue_upload_batch(batch_id: int) -> str:
    """Queue the import of a stored upload (study.tasks.import_upload_batch)."""
    return _publish(IMPORT_UPLOAD_BATCH, [batch_id])


def enqueue_demo_upload(upload_id: int) -> str:
    """Queue the analysis of a demo-page photo (study.tasks.analyse_demo_upload)."""
    return _publish(ANALYSE_DEMO_UPLOAD, [upload_id])


def enqueue_first_run() -> str:
    """Queue the first-run bootstrap (study.tasks.first_run_bootstrap): build/register the first run's models."""
    return _publish(FIRST_RUN_BOOTSTRAP, [])
