"""Celery application. Broker: Redis when REDIS_URL is set, otherwise settings' embedded default."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _make_filesystem_broker_folders() -> None:
    """The embedded default's filesystem broker needs its folders before anyone publishes."""
    from django.conf import settings

    if str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("filesystem://"):
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key], exist_ok=True)


try:
    _make_filesystem_broker_folders()
except Exception:  # settings not configured yet (e.g. celery --help); the worker calls it again
    pass
