"""Prediction jobs run in-process with a real (tiny) checkpoint: upserts, skips, failures, label mapping."""
import pytest
from django.core.files.base import ContentFile

from ml.predictor import Predictor
from study.errors import InvalidInput, JobAlreadyRunning
from study.models import Prediction, PredictionJob
from study.services.predictions import prediction_job_cancel, prediction_job_run, prediction_job_start
from tests.checkpoints import write_tiny_checkpoint
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def model_version(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    mv = ModelVersionFactory(checkpoint=ContentFile(path.read_bytes(), name="tiny.pt"))
    return mv


def load(path):
    return Predictor.from_checkpoint(path, device="cpu")


def make_job(study, model_version, **kwargs):
    job = PredictionJob.objects.create(study=study, model_version=model_version, total=study.stimuli.count(),
                                       batch_size=kwargs.pop("batch_size", 4), **kwargs)
    return job


def test_job_predicts_every_stimulus_once_with_distributions_in_study_order(model_version):
    study = StudyFactory()
    StimulusFactory.create_batch(10, study=study)
    job = prediction_job_run(job_id=make_job(study, model_version).pk, predictor_factory=load)
    assert (job.state, job.done, job.total, job.failed) == ("done", 10, 10, 0)
    predictions = Prediction.objects.filter(model_version=model_version)
    assert predictions.count() == 10
    for prediction in predictions:
        assert len(prediction.distribution) == 7
        assert sum(prediction.distribution) == pytest.approx(1.0)
        assert 0 <= prediction.ambiguity <= 1


def test_running_a_job_twice_never_duplicates_and_skips_done_images(model_version):
    study = StudyFactory()
    StimulusFactory.create_batch(6, study=study)
    first = make_job(study, model_version)
    prediction_job_run(job_id=first.pk, predictor_factory=load)
    assert prediction_job_run(job_id=first.pk, predictor_factory=load) is None  # a done job is not re-run
    calls = []

    def counting(path):
        predictor = load(path)
        original = predictor.predict
        predictor.predict = lambda images, batch_size=64: calls.append(len(images)) or original(images, batch_size)
        return predictor

    StimulusFactory.create_batch(2, study=study)
    second = prediction_job_run(job_id=make_job(study, model_version).pk, predictor_factory=counting)
    assert sum(calls) == 2 and second.done == 8
    assert Prediction.objects.filter(model_version=model_version).count() == 8


def test_force_predicts_everything_again(model_version):
    study = StudyFactory()
    StimulusFactory.create_batch(3, study=study)
    prediction_job_run(job_id=make_job(study, model_version).pk, predictor_factory=load)
    old_ids = set(Prediction.objects.values_list("pk", flat=True))
    job = prediction_job_run(job_id=make_job(study, model_version, force=True).pk, predictor_factory=load)
    assert job.done == 3 and not old_ids & set(Prediction.objects.values_list("pk", flat=True))


def test_corrupt_image_is_recorded_and_the_rest_are_predicted(model_version):
    study = StudyFactory()
    good = StimulusFactory.create_batch(4, study=study)
    bad = StimulusFactory(study=study, original_name="broken.png")
    with open(bad.image.path, "wb") as handle:
        handle.write(b"\x89PNG truncated")
    job = prediction_job_run(job_id=make_job(study, model_version).pk, predictor_factory=load)
    assert (job.state, job.done, job.failed) == ("done", 4, 1)
    assert job.errors[0]["file"] == "broken.png" and job.errors[0]["stimulus"] == str(bad.public_id)
    assert Prediction.objects.filter(stimulus__in=good).count() == 4


def test_model_with_extra_classes_drops_them_and_records_the_mass(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "eight.pt", classes=["Neutral", "Happy", "Sad", "Surprise", "Fear",
                                                                 "Disgust", "Anger", "Contempt"])
    mv = ModelVersionFactory(checkpoint=ContentFile(path.read_bytes(), name="eight.pt"),
                             classes=["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"])
    study = StudyFactory()
    StimulusFactory.create_batch(2, study=study)
    prediction_job_run(job_id=make_job(study, mv).pk, predictor_factory=load)
    for prediction in Prediction.objects.filter(model_version=mv):
        assert len(prediction.distribution) == 7 and sum(prediction.distribution) == pytest.approx(1.0)
        assert 0 < prediction.dropped_mass < 1


def test_start_refuses_a_model_missing_a_study_label(model_version):
    model_version.classes = ["Happiness", "Sadness"]
    model_version.save()
    with pytest.raises(InvalidInput, match="Surprise"):
        prediction_job_start(study=StudyFactory(), model_version=model_version)
    assert not PredictionJob.objects.exists()


def test_start_refuses_a_second_active_job_and_cancel_stops_it(model_version):
    study = StudyFactory()
    job = make_job(study, model_version)
    with pytest.raises(JobAlreadyRunning):
        prediction_job_start(study=study, model_version=model_version)
    prediction_job_cancel(job=job)
    assert prediction_job_run(job_id=job.pk, predictor_factory=load) is None
    assert PredictionJob.objects.get(pk=job.pk).state == "cancelled"


def test_unloadable_checkpoint_fails_the_job_with_a_message(model_version):
    study = StudyFactory()
    StimulusFactory(study=study)
    with open(model_version.checkpoint.path, "wb") as handle:
        handle.write(b"garbage")
    job = prediction_job_run(job_id=make_job(study, model_version).pk, predictor_factory=load)
    assert job.state == "failed" and "CheckpointError" in job.errors[0]["error"]


def test_unfinished_jobs_are_queued_again_and_finish_without_duplicates(model_version):
    """Eager Celery runs the re-queued task inline, as a worker would."""
    from study.services.predictions import prediction_jobs_requeue_unfinished

    study = StudyFactory()
    StimulusFactory.create_batch(3, study=study)
    stuck = make_job(study, model_version, state=PredictionJob.State.RUNNING)
    other = StudyFactory()
    StimulusFactory(study=other)
    finished = make_job(other, model_version, state=PredictionJob.State.DONE)
    assert prediction_jobs_requeue_unfinished() == [stuck.pk]
    stuck.refresh_from_db()
    assert (stuck.state, stuck.done) == ("done", 3)
    assert Prediction.objects.filter(model_version=model_version).count() == 3
    assert PredictionJob.objects.get(pk=finished.pk).done == 0  # a finished job is left alone


def test_a_model_lacking_labels_runs_when_allowed_with_those_labels_at_zero(tmp_path):
    from study.models import LabelSet

    path = write_tiny_checkpoint(tmp_path / "five.pt", classes=["Happiness", "Sadness", "Neutral", "Anger", "Fear"])
    mv = ModelVersionFactory(checkpoint=ContentFile(path.read_bytes(), name="five.pt"),
                             classes=["Happiness", "Sadness", "Neutral", "Anger", "Fear"])
    labels = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
    study = StudyFactory(label_set=LabelSet.objects.get_or_create(name="AffectNet-8 test", defaults={"labels": labels})[0])
    StimulusFactory.create_batch(3, study=study)
    with pytest.raises(InvalidInput, match="Surprise, Disgust, Contempt.*allow missing labels"):
        prediction_job_start(study=study, model_version=mv)
    job = prediction_job_start(study=study, model_version=mv, allow_missing_labels=True)
    assert job.missing_labels == ["Surprise", "Disgust", "Contempt"]
    job = prediction_job_run(job_id=job.pk, predictor_factory=load)
    assert job.state == "done"
    for prediction in Prediction.objects.filter(model_version=mv):
        assert [prediction.distribution[labels.index(x)] for x in job.missing_labels] == [0.0, 0.0, 0.0]
        assert sum(prediction.distribution) == pytest.approx(1.0)
    one_shared = ModelVersionFactory(classes=["Happiness", "Joyless"])
    with pytest.raises(InvalidInput, match="no class"):  # fewer than two labels in common is never allowed
        prediction_job_start(study=study, model_version=one_shared, allow_missing_labels=True)


def test_a_job_whose_message_still_waits_in_the_embedded_broker_is_not_queued_twice(model_version, filesystem_broker):
    from study.jobs import PREDICT_STIMULI, enqueue_prediction_job, waiting_task_args
    from study.services.predictions import prediction_jobs_requeue_unfinished

    study = StudyFactory()
    StimulusFactory(study=study)
    waiting, lost = make_job(study, model_version), make_job(study, model_version, state=PredictionJob.State.RUNNING)
    enqueue_prediction_job(waiting.pk)
    assert prediction_jobs_requeue_unfinished() == [lost.pk]
    assert sorted(waiting_task_args(PREDICT_STIMULI)) == [[waiting.pk], [lost.pk]]
