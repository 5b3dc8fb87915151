"""A hung (SIGSTOPped, not stopped) Redis costs a web request at most ~3 s and answers 503, never a 500."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory, UserFactory
from tests.services import missing_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BUDGET_S = 3.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server the test may freeze and thaw."""
    binary = shutil.which("redis-server")
    if not binary:
        missing_service("redis-server binary (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def frozen_broker(own_redis):
    from webapp.celery import app

    process, url = own_redis
    before = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.task_always_eager = url, False
    app.conf.broker_transport_options = {"socket_timeout": 30}  # what a careless setting would allow
    os.kill(process.pid, signal.SIGSTOP)
    yield process
    app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = before


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.django_db
def test_predict_answers_503_quickly_with_redis_frozen(client, frozen_broker):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    study = StudyFactory(owner=user)
    StimulusFactory(study=study)
    model = ModelVersionFactory()
    assert client.get(f"/studies/{study.slug}/predict/").status_code == 200  # warm: imports, templates
    response, seconds = _timed(lambda: client.post(f"/studies/{study.slug}/predict/", {"model": model.pk}))
    assert response.status_code == 503, response.content[:300]
    assert seconds < BUDGET_S


@pytest.mark.django_db
def test_a_publish_that_meets_a_frozen_redis_gives_up_within_the_budget(frozen_broker):
    import kombu.exceptions
    import redis

    from study.jobs import enqueue_prediction_job

    started = time.monotonic()
    with pytest.raises((OSError, redis.RedisError, kombu.exceptions.KombuError)):  # services answer 503
        enqueue_prediction_job(1)
    assert time.monotonic() - started < BUDGET_S


@pytest.mark.django_db
def test_readyz_says_unavailable_quickly_and_healthz_stays_ok(client, frozen_broker):
    response, seconds = _timed(lambda: client.get("/readyz/"))
    assert response.status_code == 503 and seconds < BUDGET_S
    body = response.json()
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"] is False
    response, seconds = _timed(lambda: client.get("/healthz/"))
    assert response.status_code == 200 and seconds < 0.5


@pytest.mark.django_db
def test_readyz_is_ready_and_publishing_works_once_redis_thaws(client, frozen_broker):
    from study.jobs import enqueue_prediction_job

    assert client.get("/readyz/").status_code == 503
    os.kill(frozen_broker.pid, signal.SIGCONT)
    assert client.get("/readyz/").status_code == 200
    assert enqueue_prediction_job(12345)
