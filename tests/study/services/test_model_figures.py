"""A model's training-run figures: checked with Pillow and csv before storing, owner only, content-addressed,
replaced files removed; register_model and model_version_register take them too."""
import io

import pytest
from django.core.management import CommandError, call_command

from study.errors import InvalidInput, PermissionDenied
from study.models import ModelVersion
from study.services.model_figures import model_version_attach_figures
from tests.factories import ModelVersionFactory, UserFactory
from tests.study.figure4_files import (
    LAMBDAS_CSV,
    figure4_gallery_bytes,
    figure4_png_bytes,
    zip_bytes,
)

pytestmark = pytest.mark.django_db


def attach(model, by, **files):
    return model_version_attach_figures(model_version=model, by=by,
                                        **{k: io.BytesIO(v) for k, v in files.items()})


def test_owner_attaches_lambdas_png_and_gallery_read_in_display_order(tmp_path, settings):
    model = ModelVersionFactory()
    attach(model, model.owner, lambda_export=LAMBDAS_CSV, figure4_image=figure4_png_bytes(),
           figure4_gallery=figure4_gallery_bytes(tmp_path))
    model.refresh_from_db()
    assert [(i["group"], i["lambda"]) for i in model.figure4_items] == [
        ("Happiness", 0.2), ("Happiness", 0.5), ("Sadness", 0.2), ("Sadness", 0.5)]
    first = model.figure4_items[0]
    assert first["flipped"] and first["original_label"] == "Anger" and first["content_type"] == "image/png"
    for field in (model.lambda_export, model.figure4_image, model.figure4_gallery):
        assert field.name.startswith("models/") and (settings.MEDIA_ROOT / field.name).is_file()
    assert model.figure4_image.name.endswith("_figure4.png")


def test_someone_else_cannot_attach_figures():
    model = ModelVersionFactory()
    with pytest.raises(PermissionDenied, match="owner"):
        attach(model, UserFactory(), figure4_image=figure4_png_bytes())


@pytest.mark.parametrize("files, message", [
    ({}, "at least one file"),
    ({"figure4_gallery": b"not a zip"}, "not a zip file"),
    ({"figure4_gallery": zip_bytes({"img/0.png": b"x"})}, "no gallery.csv"),
    ({"figure4_gallery": zip_bytes({"gallery.csv": b"file,group,lambda\nimg/0.png,Fear,0.3\n"})}, "not in the zip"),
    ({"figure4_gallery": zip_bytes({"gallery.csv": b"file,group,lambda\nimg/0.png,Fear,0.3\n",
                                    "img/0.png": b"<svg/>"})}, "not a readable PNG or JPEG"),
    ({"figure4_gallery": zip_bytes({"gallery.csv": b"file,group,lambda\n"})}, "lists no images"),
    ({"figure4_image": b"GIF89a..."}, "not a readable PNG or JPEG"),
    ({"figure4_image": b""}, "empty"),
    ({"lambda_export": b"index,path\n0,a.png\n"}, "needs a 'lambda' column"),
])
def test_bad_files_are_refused_and_change_nothing(files, message, tmp_path):
    model = ModelVersionFactory()
    files = {**files, **({"lambda_export": LAMBDAS_CSV} if "lambda_export" not in files and files else {})}
    with pytest.raises(InvalidInput, match=message):
        attach(model, model.owner, **files)
    model.refresh_from_db()
    assert not model.lambda_export and not model.figure4_image and not model.figure4_gallery
    assert model.figure4_items == []


def test_a_gallery_image_with_a_bad_lambda_is_named_by_line(tmp_path):
    model = ModelVersionFactory()
    data = zip_bytes({"gallery.csv": b"file,group,lambda\nimg/0.png,Fear,high\n", "img/0.png": figure4_png_bytes()})
    with pytest.raises(InvalidInput, match="line 2: lambda 'high'"):
        attach(model, model.owner, figure4_gallery=data)


def test_replacing_a_figure_removes_the_old_file(settings, django_capture_on_commit_callbacks):
    model = ModelVersionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        attach(model, model.owner, lambda_export=LAMBDAS_CSV)
    old = ModelVersion.objects.get(pk=model.pk).lambda_export.name
    with django_capture_on_commit_callbacks(execute=True):
        attach(model, model.owner, lambda_export=LAMBDAS_CSV + b"1,b,Fear,Fear,0,0.9\n")
    assert ModelVersion.objects.get(pk=model.pk).lambda_export.name != old
    assert not (settings.MEDIA_ROOT / old).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_register_model_cli_takes_the_figures_and_a_bad_one_stores_nothing(tmp_path, settings):
    from tests.checkpoints import write_tiny_checkpoint

    UserFactory(username="rita")
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="not a zip file"):
        call_command("register_model", str(path), name="m", owner="rita", figure4_gallery=tmp_path / "bad.zip",
                     stdout=io.StringIO(), timeout=20)
    assert not ModelVersion.objects.exists() and not list((settings.MEDIA_ROOT).rglob("*.pt"))
    (tmp_path / "g.zip").write_bytes(figure4_gallery_bytes(tmp_path))
    (tmp_path / "f.png").write_bytes(figure4_png_bytes())
    (tmp_path / "l.csv").write_bytes(LAMBDAS_CSV)
    call_command("register_model", str(path), name="m", owner="rita", figure4_gallery=tmp_path / "g.zip",
                 figure4=tmp_path / "f.png", lambda_export=tmp_path / "l.csv", stdout=io.StringIO(), timeout=20)
    model = ModelVersion.objects.get(name="m")
    assert model.status == "valid" and len(model.figure4_items) == 4 and model.figure4_image and model.lambda_export
    with pytest.raises(CommandError, match="no such file"):
        call_command("register_model", str(path), name="n", owner="rita", figure4=tmp_path / "nowhere.png")
