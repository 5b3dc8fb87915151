"""Prediction jobs: start one (web side, no torch), run one (worker side, with an injected predictor).

Running is idempotent so that a retried or redelivered task never duplicates anything: predictions are
upserted on (stimulus, model version), progress is recounted from the table, and a finished or cancelled
job is never run again. A corrupt image is recorded on the job and the rest go on.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from study.analysis.label_mapping import LabelMismatch, label_mapping_build, normalised_entropy
from study.errors import BrokerUnavailable, InvalidInput, JobAlreadyRunning
from study.jobs import PREDICT_STIMULI, broker_check, enqueue_prediction_job, ids_not_waiting
from study.models import ModelVersion, Prediction, PredictionJob, Stimulus, Study
from study.services.models import checkpoint_path

logger = logging.getLogger(__name__)

ACTIVE_STATES = (PredictionJob.State.QUEUED, PredictionJob.State.RUNNING)
FINAL_STATES = (PredictionJob.State.DONE, PredictionJob.State.CANCELLED, PredictionJob.State.FAILED)
MAX_RECORDED_ERRORS = 200


class PredictorLike(Protocol):
    classes: Sequence[str]

    def predict(self, images: Sequence, batch_size: int = ...): ...


# --- starting (web process) -----------------------------------------------------------------------


def prediction_job_start(*, study: Study, model_version: ModelVersion, force: bool = False,
                         batch_size: int | None = None, allow_missing_labels: bool = False,
                         user=None) -> PredictionJob:
    """Create a queued job and enqueue it after commit. Refused (nothing created) if it cannot run.

    allow_missing_labels: run a model that lacks some study labels; they get probability 0 and the job
    records which (`missing_labels`)."""
    if model_version.status != ModelVersion.Status.VALID:
        raise InvalidInput(f"model {model_version.name!r} is {model_version.get_status_display().lower()}; "
                           "only a validated model can predict")
    if model_version.kind == ModelVersion.Kind.VA:
        raise InvalidInput(f"model {model_version.name!r} is a valence/arousal regressor: it predicts no emotion "
                           "classes (the demo page shows its valence and arousal per face)")
    try:
        mapping = label_mapping_build(model_classes=model_version.classes, study_labels=study.label_set.labels,
                                      allow_missing=allow_missing_labels)
    except LabelMismatch as exc:
        hint = "" if allow_missing_labels else " (tick 'allow missing labels' to run it with those at probability 0)"
        raise InvalidInput(f"model {model_version.name!r} cannot serve study {study.slug!r}: {exc}{hint}") from None
    batch_size = batch_size or settings.PREDICT_BATCH_SIZE
    if not 1 <= batch_size <= 1024:
        raise InvalidInput("batch size must be between 1 and 1024")
    broker_check()
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()  # one start at a time per study
        active = PredictionJob.objects.filter(study=study, model_version=model_version, state__in=ACTIVE_STATES)
        if active.exists():
            raise JobAlreadyRunning(f"a job for {model_version.name!r} on this study is already "
                                    f"{active.first().state}; wait for it or cancel it")
        job = PredictionJob.objects.create(study=study, model_version=model_version, force=force,
                                           batch_size=batch_size, created_by=user,
                                           allow_missing_labels=allow_missing_labels,
                                           missing_labels=list(mapping.missing),
                                           total=Stimulus.objects.filter(study=study).count())
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    try:
        task_id = enqueue_prediction_job(job_id)
    except Exception as exc:
        PredictionJob.objects.filter(pk=job_id).delete()
        raise BrokerUnavailable(f"the job could not be queued ({exc.__class__.__name__}); nothing was started") from None
    PredictionJob.objects.filter(pk=job_id, celery_task_id="").update(celery_task_id=task_id)


def prediction_jobs_requeue_unfinished() -> list[int]:
    """Send every queued or running job to the queue again; for a broker that never redelivers.

    The embedded default's filesystem broker drops a task whose worker died, which would leave its job
    'running' for ever. Running a job twice is harmless (see prediction_job_run), so on start-up the
    embedded runner simply queues every unfinished job again.
    """
    unfinished = PredictionJob.objects.filter(state__in=ACTIVE_STATES).values_list("pk", flat=True)
    ids = ids_not_waiting(PREDICT_STIMULI, unfinished)  # a message still waiting in the broker comes by itself
    for job_id in ids:
        _enqueue(job_id)
    return ids


def prediction_job_cancel(*, job: PredictionJob) -> PredictionJob:
    """Ask a queued or running job to stop; the worker checks between batches."""
    updated = PredictionJob.objects.filter(pk=job.pk, state__in=ACTIVE_STATES).update(
        state=PredictionJob.State.CANCELLED, finished_at=timezone.now())
    if not updated:
        raise InvalidInput(f"the job is already {job.state}")
    job.refresh_from_db()
    return job


# --- running (worker process) ---------------------------------------------------------------------


def _claim(job_id: int) -> PredictionJob | None:
    """Mark the job running (first delivery or redelivery); None if it is finished or gone."""
    with transaction.atomic():
        job = PredictionJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in FINAL_STATES:
            return None
        if job.state == PredictionJob.State.QUEUED:
            if job.force:  # predict everything again: drop this model's old predictions once, at first start
                Prediction.objects.filter(stimulus__study_id=job.study_id, model_version_id=job.model_version_id).delete()
            job.state, job.started_at = PredictionJob.State.RUNNING, timezone.now()
            job.save(update_fields=["state", "started_at"])
        return job


def _predicted_count(job: PredictionJob) -> int:
    return Prediction.objects.filter(stimulus__study_id=job.study_id, model_version_id=job.model_version_id).count()


def _open_image(stimulus: Stimulus):
    from PIL import Image

    with stimulus.image.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image.convert("RGB")


def prediction_job_run(*, job_id: int, predictor_factory: Callable[[str], PredictorLike],
                       image_loader: Callable[[Stimulus], object] = _open_image) -> PredictionJob | None:
    """Predict every stimulus of the job's study that has no prediction from this model yet."""
    job = _claim(job_id)
    if job is None:
        return None
    started = time.monotonic()
    try:
        model_version = job.model_version
        predictor = predictor_factory(str(checkpoint_path(model_version)))
        mapping = label_mapping_build(model_classes=list(predictor.classes), study_labels=job.study.label_set.labels,
                                      allow_missing=job.allow_missing_labels)
        todo = list(Stimulus.objects.filter(study_id=job.study_id)
                    .exclude(predictions__model_version_id=job.model_version_id).order_by("pk"))
        errors = {e["stimulus"]: e for e in job.errors}
        batches = [todo[i:i + job.batch_size] for i in range(0, len(todo), job.batch_size)]
        # Decode the next batch's images in a thread while the model predicts this one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_load_batch, batches[0], image_loader) if batches else None
            for index in range(len(batches)):
                ok, images, failures = pending.result()
                if index + 1 < len(batches):
                    pending = pool.submit(_load_batch, batches[index + 1], image_loader)
                if PredictionJob.objects.filter(pk=job.pk, state=PredictionJob.State.CANCELLED).exists():
                    logger.info("job %s cancelled", job.pk)
                    return job
                errors.update(failures)
                if ok:
                    probabilities = predictor.predict(images, batch_size=job.batch_size)
                    _upsert(ok, model_version, mapping, probabilities)
                _progress(job, errors)
        _finish(job, errors, time.monotonic() - started)
    except Exception as exc:
        logger.exception("prediction job %s failed", job_id)
        PredictionJob.objects.filter(pk=job_id).exclude(state=PredictionJob.State.CANCELLED).update(
            state=PredictionJob.State.FAILED, finished_at=timezone.now(),
            errors=[{"stimulus": None, "error": f"{exc.__class__.__name__}: {exc}"[:500]}])
    job.refresh_from_db()
    return job


def _load_batch(batch: list[Stimulus], image_loader) -> tuple[list[Stimulus], list, dict]:
    """Decode a batch's images; a file that fails is reported, not raised (a corrupt file must not stop the rest)."""
    ok, images, failures = [], [], {}
    for stimulus in batch:
        try:
            images.append(image_loader(stimulus))
            ok.append(stimulus)
        except Exception as exc:
            failures[str(stimulus.public_id)] = {"stimulus": str(stimulus.public_id), "file": stimulus.original_name,
                                                 "error": f"{exc.__class__.__name__}: {exc}"[:300]}
    return ok, images, failures


def _upsert(stimuli: list[Stimulus], model_version: ModelVersion, mapping, probabilities) -> None:
    rows = []
    for stimulus, probs in zip(stimuli, probabilities, strict=False):
        distribution, dropped = mapping.apply(list(map(float, probs)))
        rows.append(Prediction(stimulus=stimulus, model_version=model_version, distribution=distribution,
                               dropped_mass=dropped, ambiguity=normalised_entropy(distribution)))
    Prediction.objects.bulk_create(rows, update_conflicts=True, unique_fields=["stimulus", "model_version"],
                                   update_fields=["distribution", "dropped_mass", "ambiguity"])


def _progress(job: PredictionJob, errors: dict) -> None:
    PredictionJob.objects.filter(pk=job.pk, state=PredictionJob.State.RUNNING).update(
        done=_predicted_count(job), failed=len(errors), errors=list(errors.values())[:MAX_RECORDED_ERRORS])


def _finish(job: PredictionJob, errors: dict, seconds: float) -> None:
    total = Stimulus.objects.filter(study_id=job.study_id).count()
    PredictionJob.objects.filter(pk=job.pk, state=PredictionJob.State.RUNNING).update(
        state=PredictionJob.State.DONE, finished_at=timezone.now(), total=total, done=_predicted_count(job),
        failed=len(errors), errors=list(errors.values())[:MAX_RECORDED_ERRORS])
    logger.info("job %s done in %.1f s", job.pk, seconds)
