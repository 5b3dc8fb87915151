"""run_embedded with REDIS_URL: a job whose message still waits in Redis's queue is not queued a second time at
start-up (it comes by itself); only jobs whose message is gone are queued again."""
import pytest
import redis

from study.jobs import IMPORT_UPLOAD_BATCH, PREDICT_STIMULI, enqueue_prediction_job, enqueue_upload_batch, waiting_task_args
from study.models import UploadBatch
from study.services.uploads import upload_batches_requeue_unfinished
from tests.factories import StudyFactory
from tests.services import require_redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def redis_broker():
    """The CI Redis, in a database of this test's own (13), emptied before and after; no worker reads it."""
    from webapp.celery import app

    url = require_redis().rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = url, False
    yield client
    app.conf.broker_url, app.conf.task_always_eager = saved
    client.flushdb()


def test_messages_waiting_in_redis_are_read_and_not_queued_twice(redis_broker):
    study = StudyFactory()
    waiting = UploadBatch.objects.create(study=study, original_name="a.zip")
    lost = UploadBatch.objects.create(study=study, original_name="b.zip", state=UploadBatch.State.RUNNING)
    enqueue_upload_batch(waiting.pk)
    enqueue_prediction_job(4321)
    assert waiting_task_args(IMPORT_UPLOAD_BATCH) == [[waiting.pk]]
    assert waiting_task_args(PREDICT_STIMULI) == [[4321]]
    redis_broker.lpush("gpu", b"not a message")  # anything else in the list is skipped

    assert upload_batches_requeue_unfinished() == [lost.pk]
    assert sorted(waiting_task_args(IMPORT_UPLOAD_BATCH)) == [[waiting.pk], [lost.pk]]
