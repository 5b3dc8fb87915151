"""Valence/arousal regressors in the registry: an ml.va checkpoint, or TorchScript/ONNX whose description says
"valence_arousal", registers as a VA model, is validated like any model, and is never offered for class
predictions."""
import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from study.errors import InvalidInput
from study.models import ModelVersion
from study.selectors.models import models_runnable_by
from study.services.predictions import prediction_job_start
from tests.checkpoints import write_tiny_checkpoint, write_tiny_torchscript, write_tiny_va_checkpoint
from tests.factories import StudyFactory, UserFactory
from tests.onnx_writer import linear_classifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def rita():
    return UserFactory(username="rita")


def test_an_ml_va_checkpoint_registers_as_a_va_model_and_is_not_runnable_on_a_study(rita, tmp_path, client):
    out = io.StringIO()
    call_command("register_model", str(write_tiny_va_checkpoint(tmp_path / "va.pt")), name="va", owner="rita",
                 stdout=out, timeout=30)
    call_command("register_model", str(write_tiny_checkpoint(tmp_path / "cls.pt")), name="cls", owner="rita",
                 stdout=io.StringIO(), timeout=30)
    va = ModelVersion.objects.get(name="va")
    assert va.status == "valid" and va.kind == "va" and va.is_va, va.validation_error
    assert va.arch == "va_resnet18_small" and va.classes == ["valence", "arousal"]
    assert va.training_data == "EmoStudy synthetic faces" and va.training_domain == "synthetic"
    assert "valid: va_resnet18_small, 2 classes (valence, arousal)" in out.getvalue()
    assert [m.name for m in models_runnable_by(rita)] == ["cls"]
    study = StudyFactory(owner=rita)
    with pytest.raises(InvalidInput, match="valence/arousal regressor"):
        prediction_job_start(study=study, model_version=va)
    client.force_login(rita)
    listing = client.get("/models/").content.decode()
    assert '<span class="badge">VA</span> valence, arousal' in listing
    assert "Valence/arousal regressor" in client.get(f"/models/{va.pk}/").content.decode()
    predict_page = client.get(f"/studies/{study.slug}/predict/").content.decode()
    cls = ModelVersion.objects.get(name="cls")
    assert f'<option value="{cls.pk}">cls' in predict_page and f'value="{va.pk}"' not in predict_page
    assert ">va<" not in predict_page and "va (va_resnet18_small)" not in predict_page


def test_a_torchscript_va_regressor_registers_through_the_form(rita, tmp_path, client):
    client.force_login(rita)
    path = write_tiny_torchscript(tmp_path / "va.pt", outputs=2, va=True)
    response = client.post("/models/", {
        "name": "ts-va", "checkpoint": ContentFile(path.read_bytes(), name="va.pt"), "outputs": "valence_arousal",
        "input_size": "16", "training_data": "AffectNet (photographs)", "training_domain": "photo"})
    model = ModelVersion.objects.get(name="ts-va")
    assert response.status_code == 302 and model.status == "valid", model.validation_error
    assert model.kind == "va" and model.classes == ["valence", "arousal"] and model.arch == "torchscript"


def test_an_onnx_va_regressor_with_a_sidecar_clips_to_the_va_range(rita, tmp_path, settings):
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from ml.predictor import load_predictor

    weight = np.full((3 * 8 * 8, 2), 10.0, np.float32)  # a bright image gives values far above 1
    path = linear_classifier(tmp_path / "va.onnx", weight, np.zeros(2, np.float32), (3, 8, 8))
    (tmp_path / "va.onnx.json").write_text(json.dumps({"format": "onnx", "outputs": "valence_arousal",
                                                       "input_size": 8, "training_data": "AffectNet"}))
    call_command("register_model", str(path), name="onnx-va", owner="rita", stdout=io.StringIO(), timeout=30)
    model = ModelVersion.objects.get(name="onnx-va")
    assert model.status == "valid" and model.kind == "va", model.validation_error
    va = load_predictor(model.checkpoint.path, device="cpu").predict_va([Image.new("RGB", (8, 8), (255, 255, 255))])
    assert va.shape == (1, 2) and np.allclose(va, 1.0)


def test_a_va_description_with_three_outputs_is_rejected_by_the_worker(rita, tmp_path, client):
    client.force_login(rita)
    path = write_tiny_torchscript(tmp_path / "three.pt", outputs=3)
    client.post("/models/", {"name": "not-va", "checkpoint": ContentFile(path.read_bytes(), name="three.pt"),
                             "outputs": "valence_arousal", "input_size": "16"})
    model = ModelVersion.objects.get(name="not-va")
    assert model.status == "invalid"
    assert "gives 3 values per image, but its description lists valence and arousal" in model.validation_error
