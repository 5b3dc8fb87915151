"""The one seam where the web side hands work to Celery workers.

Services call these functions; they publish tasks *by name* (the task objects are looked up in the
Celery app's registry), so no service imports study.tasks and the tasks, which call services, close no
import cycle. Everything here runs in the web process and never imports torch.
"""
from __future__ import annotations

from study.errors import BrokerUnavailable

PREDICT_STIMULI = "study.tasks.predict_stimuli"
VALIDATE_MODEL_VERSION = "study.tasks.validate_model_version"
ANALYSE_DEMO_UPLOAD = "study.tasks.analyse_demo_upload"
FIRST_RUN_BOOTSTRAP = "study.tasks.first_run_bootstrap"


def _app():
    from webapp.celery import app

    return app


def broker_check(timeout: float = 2.0) -> None:
    """Raise BrokerUnavailable unless the Celery broker accepts a connection now (eager mode: always)."""
    app = _app()
    if app.conf.task_always_eager:
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
    except Exception as exc:  # kombu raises transport-specific errors
        raise BrokerUnavailable(
            f"the task queue (Celery broker) is unreachable, so no job was started: {exc.__class__.__name__}. "
            "Start Redis (or the embedded worker) and try again."
        ) from None


def _publish(task_name: str, args: list, retry_policy: dict) -> str:
    """Send one task; returns its id. Raises whatever the transport raises when the broker fails."""
    app = _app()
    if task_name not in app.tasks:
        app.loader.import_default_modules()  # Celery's autodiscovery registers study.tasks (which imports no torch)
    task = app.tasks[task_name]  # a registered task keeps eager mode and the task routes working
    result = task.apply_async(args=args, retry=True, retry_policy=retry_policy)
    return result.id or ""


def enqueue_model_validation(model_version_id: int) -> str:
    """Queue the worker-side check of a registered checkpoint (study.tasks.validate_model_version)."""
    return _publish(VALIDATE_MODEL_VERSION, [model_version_id],
                    {"max_retries": 2, "interval_start": 0, "interval_step": 0.5})


def enqueue_prediction_job(job_id: int) -> str:
    """Queue a prediction job (study.tasks.predict_stimuli)."""
    return _publish(PREDICT_STIMULI, [job_id],
                    {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1})


def enqueue_demo_upload(upload_id: int) -> str:
    """Queue the analysis of a demo-page photo (study.tasks.analyse_demo_upload)."""
    return _publish(ANALYSE_DEMO_UPLOAD, [upload_id], {"max_retries": 2, "interval_start": 0, "interval_step": 0.5})
def enqueue_first_run() -> str:
    """Queue the first-run bootstrap (study.tasks.first_run_bootstrap): build/register the first run's models."""
    return _publish(FIRST_RUN_BOOTSTRAP, [], {"max_retries": 2, "interval_start": 0, "interval_step": 0.5})
