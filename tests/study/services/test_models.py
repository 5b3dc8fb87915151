"""Model registry: register_model and the upload form validate in a (here eager) worker task."""
import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from study.models import ModelVersion
from tests.checkpoints import write_tiny_checkpoint
from tests.factories import UserFactory

# on_commit must fire to enqueue validation
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


@pytest.fixture(autouse=True)
def owner():
    return UserFactory(username="rita")


def register(path, name="m", owner="rita", **kwargs):
    out = io.StringIO()
    call_command("register_model", str(path), name=name, owner=owner, stdout=out, timeout=20, **kwargs)
    return out.getvalue()


def test_register_model_reads_metadata_and_stores_content_addressed(tmp_path, settings):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    output = register(path, name="tiny", demo=True)
    model = ModelVersion.objects.get(name="tiny")
    assert "valid: resnet18_small, 7 classes" in output
    assert model.status == "valid" and model.is_demo and model.classes[0] == "Surprise"
    assert model.checkpoint.name == f"models/{model.sha256[:2]}/{model.sha256}.pt"
    assert (settings.MEDIA_ROOT / model.checkpoint.name).exists()


def test_same_file_twice_is_refused_with_a_message(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    register(path, name="first")
    with pytest.raises(CommandError, match="already registered as 'first'"):
        register(path, name="second")
    assert "already registered" in register(path, name="first", if_missing=True)


@pytest.mark.parametrize("kind", ["text", "truncated", "no_classes"])
def test_bad_checkpoints_are_rejected_and_leave_nothing_behind(tmp_path, settings, kind):
    path = tmp_path / "bad.pt"
    if kind == "text":
        path.write_text("this is not a checkpoint\n")
        expected = "not a PyTorch checkpoint"
    elif kind == "truncated":
        data = write_tiny_checkpoint(tmp_path / "full.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
        expected = "not a PyTorch checkpoint|truncated|corrupt|rejected"
    else:
        write_tiny_checkpoint(path, drop=["classes"])
        expected = "class"
    with pytest.raises(CommandError, match=expected):
        register(path, name="bad")
    assert not ModelVersion.objects.exists()
    assert not list((settings.MEDIA_ROOT).rglob("*.pt"))


def test_missing_file_is_a_clear_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        register(tmp_path / "nope.pt")


def test_upload_form_registers_and_reports_rejections(client, tmp_path):
    client.force_login(UserFactory())
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    with open(path, "rb") as handle:
        response = client.post("/models/", {"name": "uploaded", "checkpoint": handle})
    assert response.status_code == 302
    model = ModelVersion.objects.get(name="uploaded")
    assert model.status == "valid"
    assert b"resnet18_small" in client.get(f"/models/{model.pk}/").content
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with open(bad, "rb") as handle:
        response = client.post("/models/", {"name": "bad", "checkpoint": handle})
    assert response.status_code == 400 and b"not a PyTorch checkpoint" in response.content


def test_model_pages_need_login(client):
    assert client.get("/models/").status_code == 302


def test_register_model_cli_exit_code_without_traceback(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_text("nope")
    result = subprocess.run([sys.executable, "manage.py", "register_model", str(bad), "--name", "x",
                             "--owner", "rita"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "not a PyTorch checkpoint" in result.stderr
    assert "Traceback" not in result.stderr
