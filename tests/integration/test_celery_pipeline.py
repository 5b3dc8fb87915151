"""The prediction pipeline on the real stack: PostgreSQL, Redis and `celery worker` subprocesses.

Run by `bash .ci/run` (EMOSTUDY_REQUIRE_SERVICES=1 makes missing services fail). Locally, without
DATABASE_URL/REDIS_URL pointing at PostgreSQL/Redis, these tests skip.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from study.models import ModelVersion, Prediction, PredictionJob
from study.services.models import model_version_register
from study.services.predictions import prediction_job_start
from tests.checkpoints import write_tiny_checkpoint
from tests.factories import StimulusFactory, StudyFactory, UserFactory
from tests.services import require_postgres, require_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """A `celery -A webapp worker -Q gpu` process group on the same database, media and broker."""

    def __init__(self, name: str, log_dir: Path):
        env = {**os.environ, "DATABASE_URL": _database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
               "CELERY_VISIBILITY_TIMEOUT": "4", "MODEL_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
               # sweep for a dead worker's unacknowledged task every second, not every 100 s
               "CELERY_UNACKED_RESTORE_INTERVAL": "1", "CELERY_UNACKED_RESTORE_THROTTLE": "1",
               "CELERY_UNACKED_MUTEX_EXPIRE": "5"}
        self.log = open(log_dir / f"{name}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "gpu", "--concurrency", "1",
             "--loglevel", "INFO", "-n", f"{name}-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
            cwd=settings.BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker dies mid-task without acknowledging."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def real_stack(tmp_path):
    require_postgres()
    require_redis()
    from webapp.celery import app

    with app.connection_for_write() as conn:  # start from an empty queue
        conn.default_channel.queue_purge("gpu")
    workers = []

    def start(name="worker"):
        worker = Worker(name, tmp_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def register(path: Path, name: str) -> ModelVersion:
    with open(path, "rb") as handle:
        model_version = model_version_register(name=name, handle=handle, filename=path.name,
                                               owner=UserFactory())
    wait_for(lambda: ModelVersion.objects.get(pk=model_version.pk).status != "pending", 90, "validation")
    model_version.refresh_from_db()
    return model_version


def assert_one_valid_prediction_per_stimulus(study, model_version):
    predictions = list(Prediction.objects.filter(model_version=model_version, stimulus__study=study))
    assert len(predictions) == study.stimuli.count()
    assert len({p.stimulus_id for p in predictions}) == len(predictions)
    for prediction in predictions:
        assert len(prediction.distribution) == len(study.label_set.labels)
        assert sum(prediction.distribution) == pytest.approx(1.0, abs=1e-6)


def test_worker_registers_a_checkpoint_and_predicts_50_stimuli(real_stack, tmp_path):
    real_stack("w1")
    model_version = register(write_tiny_checkpoint(tmp_path / "tiny.pt"), "tiny")
    assert model_version.status == "valid" and model_version.classes[0] == "Surprise"
    study = StudyFactory()
    StimulusFactory.create_batch(50, study=study)
    job = prediction_job_start(study=study, model_version=model_version, batch_size=8)
    wait_for(lambda: PredictionJob.objects.get(pk=job.pk).state == "done", 120, "the job to finish")
    job.refresh_from_db()
    assert (job.done, job.total, job.failed) == (50, 50, 0)
    assert_one_valid_prediction_per_stimulus(study, model_version)


def test_worker_rejects_an_unloadable_checkpoint(real_stack, tmp_path):
    real_stack("w1")
    model_version = register(write_tiny_checkpoint(tmp_path / "nocls.pt", drop=["classes"]), "nocls")
    assert model_version.status == "invalid" and "class" in model_version.validation_error
    assert not model_version.checkpoint


def test_killed_worker_mid_job_then_new_worker_finishes_without_duplicates(real_stack, tmp_path):
    first = real_stack("w1")
    # A full-width ResNet-18 at 160 px and batches of one image make the job last long enough to kill it.
    model_version = register(write_tiny_checkpoint(tmp_path / "big.pt", arch="resnet18", input_size=160), "big")
    study = StudyFactory()
    StimulusFactory.create_batch(60, study=study)
    job = prediction_job_start(study=study, model_version=model_version, batch_size=1)
    wait_for(lambda: PredictionJob.objects.get(pk=job.pk).done >= 3, 120, "the job to start predicting", 0.01)
    first.kill()
    job.refresh_from_db()
    assert job.state == "running" and 0 < job.done < 60, "the worker must die mid-job"
    real_stack("w2")
    wait_for(lambda: PredictionJob.objects.get(pk=job.pk).state == "done", 180, "the redelivered job to finish")
    job.refresh_from_db()
    assert (job.done, job.total) == (60, 60)
    assert_one_valid_prediction_per_stimulus(study, model_version)
