"""Registering TorchScript/ONNX files with a sidecar: validated in the (eager) worker like a checkpoint."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from study.models import ModelVersion
from study.services.models import model_version_delete
from tests.factories import UserFactory
from tests.onnx_writer import linear_classifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]
pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def owner():
    return UserFactory(username="rita")  # every model has an owner (issue 13)


def onnx_model(tmp_path, classes=("Happiness", "Sadness", "Neutral"), **sidecar):
    rng = np.random.default_rng(0)
    path = linear_classifier(tmp_path / "toy.onnx", rng.normal(size=(3 * 8 * 8, len(classes))).astype(np.float32),
                             np.zeros(len(classes), np.float32), (3, 8, 8))
    spec = {"format": "onnx", "classes": list(classes), "input_size": 8, "channels": "rgb", "mean": [0.5] * 3,
            "std": [0.5] * 3, "outputs": "logits", "training_data": "RAF-DB (photos)", "training_domain": "photo",
            "licence": "CC-BY-4.0", **sidecar}
    (tmp_path / "toy.onnx.json").write_text(json.dumps(spec))
    return path


def test_onnx_with_sidecar_registers_and_predicts_where_the_worker_finds_it(tmp_path, settings, owner):
    from ml.predictor import get_predictor

    out = io.StringIO()
    call_command("register_model", str(onnx_model(tmp_path)), name="toy-onnx", owner="rita", stdout=out, timeout=20)
    model = ModelVersion.objects.get(name="toy-onnx")
    assert model.status == "valid", model.validation_error
    assert model.arch == "onnx" and model.classes == ["Happiness", "Sadness", "Neutral"] and model.input_size == 8
    assert model.training_data == "RAF-DB (photos)" and model.training_domain == "photo"
    assert model.metrics["licence"] == "CC-BY-4.0"
    stored = Path(settings.MEDIA_ROOT) / model.checkpoint.name
    assert stored.with_name(stored.name + ".json").is_file()
    probs = get_predictor(stored, device="cpu").predict([Image.new("RGB", (20, 20), (200, 100, 50))])
    assert probs.shape == (1, 3) and abs(probs.sum() - 1) < 1e-5
    model_version_delete(model_version=model, by=owner)
    assert not stored.exists() and not stored.with_name(stored.name + ".json").exists()


def test_a_sidecar_the_worker_rejects_leaves_nothing(tmp_path, settings):
    path = onnx_model(tmp_path, classes=("a", "b", "c", "d"))  # the sidecar says 4 classes: the graph outputs 4
    (tmp_path / "toy.onnx.json").write_text(json.dumps({**json.loads((tmp_path / "toy.onnx.json").read_text()),
                                                        "classes": ["a", "b"]}))  # now it lies: 2 classes
    with pytest.raises(CommandError, match=r"gives 4 values per image, but its description lists 2 class names \(a, b\)"):
        call_command("register_model", str(path), name="liar", owner="rita", stdout=io.StringIO(), timeout=20)
    assert not ModelVersion.objects.exists()
    models_dir = Path(settings.MEDIA_ROOT) / "models"
    assert not models_dir.exists() or not any(p.is_file() for p in models_dir.rglob("*"))


@pytest.mark.parametrize("sidecar, message", [
    ("{oops", "not readable JSON"),
    (json.dumps({"format": "keras", "classes": ["a", "b"]}), "format"),
    (json.dumps({"format": "onnx", "classes": "a,b"}), "classes"),
])
def test_malformed_sidecars_are_refused_before_storing(tmp_path, sidecar, message):
    path = onnx_model(tmp_path)
    side = tmp_path / "other.json"
    side.write_text(sidecar)
    with pytest.raises(CommandError, match=message):
        call_command("register_model", str(path), name="x", owner="rita", sidecar=side, stdout=io.StringIO(), timeout=20)
    assert not ModelVersion.objects.exists()
