"""gunicorn settings from the environment: `gunicorn -c webapp/gunicorn_conf.py webapp.wsgi`.

gthread workers: each process serves WEB_THREADS requests at once, so many participants waiting on the
network (slow phones, think time between votes) do not each hold a whole process as sync workers do.

The application is loaded once in the master and the workers are forked from it (WEB_PRELOAD, on by default):
importing Django, numpy and scipy takes seconds of CPU, which would otherwise be paid by every worker at boot,
by every worker that replaces a killed or recycled one, and by all of them at once after a restart.
"""
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
workers = _int("WEB_WORKERS", 3)
threads = _int("WEB_THREADS", 8)
preload_app = _bool("WEB_PRELOAD", True)  # nothing opens a connection at import: forked workers share none
timeout = _int("WEB_TIMEOUT", 30)  # a request longer than this is killed; long work goes to Celery
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 20)
keepalive = _int("WEB_KEEPALIVE", 5)
backlog = _int("WEB_BACKLOG", 2048)
max_requests = _int("WEB_MAX_REQUESTS", 5000)  # recycle workers now and then (slow leaks never add up)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", 500)
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """With the app preloaded, also import crowd-kit in the master: every forked worker then has it, and the
    first participants page or crowd-model comparison does not pay seconds of imports."""
    if preload_app:
        from study.analysis.aggregation import import_crowd_kit

        import_crowd_kit()
