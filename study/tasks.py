"""Celery tasks: thin wrappers around services, and the only place the web app touches ml (lazily).

Services publish them by name through study/jobs.py. All are routed to the `gpu` queue
(settings.CELERY_TASK_ROUTES), acknowledge late and are requeued if the worker dies, so they are written to
be idempotent (see study.services.predictions).
"""
from celery import shared_task
from django.conf import settings


def _device():
    return settings.MODEL_DEVICE or None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def predict_stimuli(self, job_id: int) -> None:
    from ml.predictor import get_predictor  # lazy: the web process never imports torch
    from study.services.predictions import prediction_job_run

    prediction_job_run(job_id=job_id, predictor_factory=lambda path: get_predictor(path, device=_device()))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def validate_model_version(self, model_version_id: int) -> None:
    """Load the checkpoint the way predictions will; record its metadata or why it is unusable."""
    from ml.predictor import CheckpointError, load_predictor
    from study.models import ModelVersion
    from study.services.models import checkpoint_path, model_version_apply_validation, model_version_mark_validating

    model_version = ModelVersion.objects.filter(pk=model_version_id).first()
    if model_version is None or model_version.status != ModelVersion.Status.PENDING:
        return
    model_version_mark_validating(model_version_id=model_version_id)  # the page shows "a worker is loading it"
    try:
        # an EmoStudy checkpoint, or TorchScript/ONNX with the sidecar stored beside it; run on a test face
        predictor = load_predictor(str(checkpoint_path(model_version)), device="cpu")
    except (CheckpointError, OSError, ValueError) as exc:
        model_version_apply_validation(model_version_id=model_version_id, info=None, error=str(exc)[:1000])
        return
    except Exception as exc:  # anything else a foreign pickle can raise
        model_version_apply_validation(model_version_id=model_version_id, info=None,
                                       error=f"unloadable checkpoint ({exc.__class__.__name__}: {exc})"[:1000])
        return
    info = {"arch": predictor.arch, "classes": list(predictor.classes), "kind": predictor.task,
            "input_size": predictor.input_size,
            "normalization": predictor.normalization, "metrics": predictor.metrics,
            "training_data": predictor.training_data, "training_domain": predictor.training_domain}
    model_version_apply_validation(model_version_id=model_version_id, info=info, error=None)


def _model_meta(mv, key: str) -> dict:
    return {"key": key, "name": mv.name, "training_data": mv.training_data or "not stated",
            "training_domain": mv.training_domain,
            "domain_warning": ("trained on synthetic faces, not photographs: expect poor results on "
                               "real faces") if mv.training_domain == "synthetic" else ""}


def _demo_models():
    """(classifiers by key, their metadata, the VA model or None, its metadata) for the demo page.

    Classifiers: every valid demo model, oldest first. VA: one regressor per face is enough, so the demo VA
    model trained on photographs wins over a synthetic-face one, then the newest."""
    from ml.predictor import get_predictor
    from study.selectors.demo import demo_model_versions
    from study.services.models import checkpoint_path

    classifiers, va_models = demo_model_versions()
    models, meta = {}, []
    for mv in classifiers:
        key = f"m{mv.pk}"
        try:
            models[key] = get_predictor(str(checkpoint_path(mv)), device=_device())
        except Exception:  # a broken file must not take the demo down; the registry page shows it
            continue
        meta.append(_model_meta(mv, key))
    for mv in va_models:
        try:
            return models, meta, get_predictor(str(checkpoint_path(mv)), device=_device()), _model_meta(mv, f"m{mv.pk}")
        except Exception:  # the next VA model, if any
            continue
    return models, meta, None, None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def analyse_demo_upload(self, upload_id: int) -> None:
    """The /demo/ page: detect faces, classify each with every demo model; the photo is deleted after."""
    from study.services.demo import demo_upload_run

    def analyse(image, whole_image):
        from ml.analyse import analyse_photo
        from ml.faces import get_detector

        models, meta, va_model, va_meta = _demo_models()
        result, crops = analyse_photo(image, models, detector=get_detector(_device()), whole_image=whole_image,
                                      va_model=va_model)
        result["models"] = meta
        if va_meta is not None:
            result["va_model"] = va_meta  # name, training data and domain warning beside each face's VA
        return result, crops

    demo_upload_run(upload_id=upload_id, analyse=analyse)


@shared_task
def purge_demo_uploads() -> dict:
    """Periodic (beat): delete expired demo results and stray temporary files."""
    from study.services.demo import demo_uploads_purge

    return demo_uploads_purge()


def face_cropper(mode: str):
    """ml.faces' detector and crop_face as a FaceCropper (mode "square" or "aligned"); loaded once per process.

    Also used by `manage.py import_stimuli`, which runs the detection in its own process."""
    from ml.faces import FaceDetectorUnavailable, crop_face, get_detector, reading_order  # lazy: imports torch
    from study.errors import FaceDetectionUnavailable
    from study.services.face_imports import FaceCropper

    try:
        detector = get_detector(_device())
    except FaceDetectorUnavailable as exc:
        raise FaceDetectionUnavailable(f"face detection is not available here: {exc}") from None
    return FaceCropper(detect=detector.detect, crop=crop_face, order=reading_order, align=mode == "aligned")


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def import_upload_batch(self, batch_id: int) -> None:
    """Import an upload stored by the web: images are checked with Pillow; only batches that crop faces load the
    face detector (torch)."""
    from study.services.uploads import upload_batch_run

    upload_batch_run(batch_id=batch_id, face_cropper=face_cropper)


def _load_builder(spec: str):
    """"module:function" -> the function (e.g. ml.demo_model:build); only the worker imports ml."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def first_run_bootstrap(self) -> None:
    """Build or register the first run's models (study.services.first_run.FIRST_RUN_MODELS) and queue their predictions."""
    from study.services.first_run import first_run_execute

    first_run_execute(load_builder=_load_builder, validate=lambda pk: validate_model_version.run(pk))
