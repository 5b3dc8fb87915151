"""With the broker down, starting a job answers 503 and creates nothing; the rest of the site works."""
import pytest

from study.models import PredictionJob
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down():
    from webapp.celery import app

    before = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.task_always_eager = "redis://127.0.0.1:9/0", False  # nothing listens on port 9
    app.conf.broker_transport_options = {}
    yield
    app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = before


def test_starting_a_job_gets_503_and_creates_nothing(client, broker_down):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    study = StudyFactory(owner=user)
    StimulusFactory(study=study)
    model = ModelVersionFactory()
    response = client.post(f"/studies/{study.slug}/predict/", {"model": model.pk})
    assert response.status_code == 503
    assert b"unreachable" in response.content
    assert not PredictionJob.objects.exists()


def test_voting_pages_and_admin_keep_working(client, broker_down):
    study = StudyFactory()
    StimulusFactory.create_batch(3, study=study)
    assert client.get(f"/s/{study.slug}/").status_code == 200
    client.force_login(UserFactory(is_superuser=True))
    assert client.get("/admin/").status_code == 200


def test_predict_study_command_exits_with_the_message(broker_down):
    from django.core.management import CommandError, call_command

    study = StudyFactory()
    ModelVersionFactory(name="m1")
    with pytest.raises(CommandError, match="unreachable"):
        call_command("predict_study", study.slug, model="m1")
    assert not PredictionJob.objects.exists()


@pytest.mark.django_db(transaction=True)  # on_commit runs, as in a real request
def test_uploading_a_model_gets_503_and_stores_nothing(client, broker_down, tmp_path, settings):
    from study.models import ModelVersion
    from tests.checkpoints import write_tiny_checkpoint

    client.force_login(UserFactory())
    with open(write_tiny_checkpoint(tmp_path / "tiny.pt"), "rb") as handle:
        response = client.post("/models/", {"name": "uploaded", "checkpoint": handle})
    assert response.status_code == 503 and b"unreachable" in response.content
    assert not ModelVersion.objects.exists()
    assert not list(settings.MEDIA_ROOT.rglob("*.pt"))


def test_register_model_command_exits_with_the_message(broker_down, tmp_path):
    from django.core.management import CommandError, call_command

    from study.models import ModelVersion
    from tests.checkpoints import write_tiny_checkpoint

    UserFactory(username="rita")
    with pytest.raises(CommandError, match="unreachable"):
        call_command("register_model", str(write_tiny_checkpoint(tmp_path / "tiny.pt")), name="m", owner="rita")
    assert not ModelVersion.objects.exists()
