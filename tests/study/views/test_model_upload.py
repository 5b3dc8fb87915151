"""The Models page's upload form: EmoStudy checkpoints, TorchScript and ONNX with their description as a JSON
file or as form fields, validated by the same service and (here eager) worker task as `register_model`."""
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile

from study.models import ModelVersion
from tests.checkpoints import write_tiny_checkpoint, write_tiny_torchscript
from tests.factories import UserFactory
from tests.onnx_writer import linear_classifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

CLASSES = ["Happiness", "Sadness", "Neutral"]


@pytest.fixture
def researcher(client):
    user = UserFactory(username="rita")
    client.force_login(user)
    return user


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in (media_root / "models").rglob("*") if p.is_file()] if (media_root / "models").exists() else []


def upload(client, path: Path, name="m", **fields):
    data = {"name": name, "checkpoint": ContentFile(path.read_bytes(), name=path.name), **fields}
    return client.post("/models/", data)


def torchscript_fields(**overrides):
    return {"file_type": "auto", "outputs": "logits", "classes": ", ".join(CLASSES), "input_size": "16",
            "channels": "rgb", "mean": "0.5", "std": "0.5", "training_data": "RAF-DB (photographs)",
            "training_domain": "photo", "licence": "CC-BY-4.0", **overrides}


def test_torchscript_with_form_fields_is_validated_by_the_worker_and_shows_its_description(client, researcher,
                                                                                          tmp_path):
    UserFactory(username="sam")
    path = write_tiny_torchscript(tmp_path / "tiny.pt", outputs=3)
    response = upload(client, path, name="ts", share_with="sam", **torchscript_fields())
    model = ModelVersion.objects.get(name="ts")
    assert response.status_code == 302 and response["Location"] == f"/models/{model.pk}/"
    assert model.status == "valid", model.validation_error
    assert model.owner == researcher and model.arch == "torchscript" and model.classes == CLASSES
    assert model.kind == "expression" and model.input_size == 16
    assert model.training_data == "RAF-DB (photographs)" and model.training_domain == "photo"
    assert model.metrics["licence"] == "CC-BY-4.0"
    assert [u.username for u in model.shared_with.all()] == ["sam"] and not model.is_public
    sidecar = json.loads((Path(model.checkpoint.path + ".json")).read_text())
    assert sidecar["mean"] == [0.5, 0.5, 0.5] and sidecar["format"] == "torchscript"  # one value -> every channel
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "Valid" in page and "Happiness, Sadness, Neutral" in page and "RAF-DB (photographs)" in page
    assert "Metrics and details" in page and "licence = CC-BY-4.0" in page
    model.metrics["licence"] = ""  # no licence given: the page leaves it out rather than show "licence = "
    model.save(update_fields=["metrics"])
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "licence =" not in page and "format = torchscript" in page


def test_onnx_with_an_uploaded_sidecar_json_is_registered_public(client, researcher, tmp_path):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    path = linear_classifier(tmp_path / "toy.onnx", rng.normal(size=(3 * 8 * 8, 3)).astype(np.float32),
                             np.zeros(3, np.float32), (3, 8, 8))
    sidecar = {"format": "onnx", "classes": CLASSES, "input_size": 8, "channels": "rgb", "mean": [0.5] * 3,
               "std": [0.5] * 3, "outputs": "logits", "training_data": "AffectNet", "training_domain": "photo",
               "licence": "MIT"}
    # the JSON wins over the fields (here deliberately wrong ones)
    response = upload(client, path, name="onnx", public="on", sidecar=ContentFile(json.dumps(sidecar).encode(),
                                                                                   name="toy.onnx.json"),
                      classes="x, y", input_size="99")
    model = ModelVersion.objects.get(name="onnx")
    assert response.status_code == 302 and model.status == "valid", model.validation_error
    assert model.arch == "onnx" and model.classes == CLASSES and model.input_size == 8 and model.is_public
    assert model.training_data == "AffectNet"


def test_an_emostudy_checkpoint_needs_no_description(client, researcher, tmp_path):
    response = upload(client, write_tiny_checkpoint(tmp_path / "tiny.pt"), name="ckpt", training_data="my photos")
    model = ModelVersion.objects.get(name="ckpt")
    assert response.status_code == 302 and model.status == "valid" and model.arch == "resnet18_small"
    assert model.training_data == "my photos"  # the form's provenance beats the checkpoint's


def test_class_names_that_do_not_match_the_outputs_are_rejected_with_a_clear_message_and_no_file(
        client, researcher, tmp_path, settings):
    path = write_tiny_torchscript(tmp_path / "tiny.pt", outputs=7)
    response = upload(client, path, name="liar", **torchscript_fields())  # 3 names for 7 outputs
    model = ModelVersion.objects.get(name="liar")
    assert response.status_code == 302 and model.status == "invalid"
    assert "gives 7 values per image, but its description lists 3 class names" in model.validation_error
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert "Rejected: the model gives 7 values" in page
    assert str(settings.MEDIA_ROOT) not in page and model.sha256 not in model.validation_error
    assert stored_files(settings.MEDIA_ROOT) == []
    # trying again with the same name works once the description is right
    response = upload(client, path, name="liar", **torchscript_fields(classes="a, b, c, d, e, f, g"))
    assert ModelVersion.objects.get(name="liar").status == "valid"


def test_a_file_that_is_not_a_model_is_rejected_by_the_worker_without_server_paths(client, researcher, tmp_path,
                                                                                    settings):
    import zipfile

    path = tmp_path / "photos.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday/readme.txt", "not a model")
    response = upload(client, path, name="zip")
    model = ModelVersion.objects.get(name="zip")
    assert response.status_code == 302 and model.status == "invalid"
    assert "not a readable PyTorch checkpoint" in model.validation_error
    assert "the uploaded file" in model.validation_error and "/" not in model.validation_error.split("(")[0]
    assert stored_files(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize("fields, message", [
    ({"classes": ""}, "list the model&#x27;s class names in output order"),
    ({"input_size": ""}, "give the model&#x27;s input size"),
    ({"input_size": "3"}, "greater than or equal to 8"),
    ({"mean": "a, b"}, "numbers separated by commas"),
    ({"std": "0"}, "positive numbers only"),
    ({"mean": "0.1, 0.2"}, "give 1 or 3 number(s)"),
    ({"share_with": "nobody-here"}, "no researcher named nobody-here"),
    ({"sidecar": ContentFile(b"{oops", name="s.json")}, "not readable JSON"),
    ({"sidecar": ContentFile(b"[1, 2]", name="s.json")}, "one JSON object"),
    ({"sidecar": ContentFile(json.dumps({"format": "onnx", "classes": CLASSES}).encode(), name="s.json"),
      "file_type": "torchscript"}, "the description says the file is &#x27;onnx&#x27;"),
    ({"sidecar": ContentFile(json.dumps({"format": "torchscript", "classes": "a"}).encode(), name="s.json")},
     "must list the class names"),
])
def test_bad_descriptions_are_a_400_with_a_message_and_store_nothing(client, researcher, tmp_path, settings,
                                                                      fields, message):
    path = write_tiny_torchscript(tmp_path / "tiny.pt")
    response = upload(client, path, name="bad", **torchscript_fields(**fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ModelVersion.objects.exists() and stored_files(settings.MEDIA_ROOT) == []


def test_text_renamed_pt_and_a_missing_file_are_400s(client, researcher, settings, tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    response = upload(client, bad, name="bad")
    assert response.status_code == 400 and b"not a PyTorch checkpoint" in response.content
    response = client.post("/models/", {"name": "nofile"})
    assert response.status_code == 400 and b"This field is required" in response.content
    assert not ModelVersion.objects.exists() and stored_files(settings.MEDIA_ROOT) == []


def test_an_upload_over_the_size_limit_is_a_413_with_a_message(client, researcher, settings, tmp_path):
    settings.MAX_CHECKPOINT_BYTES = 1000
    path = write_tiny_torchscript(tmp_path / "tiny.pt")  # a few kB
    response = upload(client, path, name="big", **torchscript_fields())
    assert response.status_code == 413 and b"over the" in response.content and b"limit" in response.content
    assert not ModelVersion.objects.exists() and stored_files(settings.MEDIA_ROOT) == []
    # a body far over the limit is refused from its Content-Length, before Django reads it
    response = client.post("/models/", data=b"x" * 10, content_type="multipart/form-data; boundary=zzz",
                           CONTENT_LENGTH=str(50 * 1024 * 1024))
    assert response.status_code == 413 and b"a model file may be at most" in response.content


def test_broken_multipart_is_a_400(client, researcher):
    response = client.generic("POST", "/models/", b"--zzz\r\nbroken", content_type="multipart/form-data")
    assert response.status_code == 400


def test_non_researchers_and_visitors_cannot_upload(client, tmp_path):
    path = write_tiny_torchscript(tmp_path / "tiny.pt")
    response = upload(client, path, name="anon", **torchscript_fields())
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(UserFactory(username="pat", researcher=False))
    response = upload(client, path, name="pat", **torchscript_fields())
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()


def test_the_status_json_reports_the_validation_stage(client, researcher):
    from django.utils import timezone

    from tests.factories import ModelVersionFactory

    model = ModelVersionFactory(owner=researcher, status="pending")
    assert client.get(f"/models/{model.pk}/status.json").json()["stage"] == "queued"
    assert 'id="stage-queued" class="current"' in client.get(f"/models/{model.pk}/").content.decode()
    ModelVersion.objects.filter(pk=model.pk).update(validation_started_at=timezone.now())
    assert client.get(f"/models/{model.pk}/status.json").json()["stage"] == "validating"
