"""Predictor: checkpoint round trip, preprocessing, and CheckpointError for anything unusable."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ml.checkpoints import CheckpointError, save_checkpoint
from ml.models import build_model
from ml.predictor import Predictor, VAPredictor, get_predictor, load_predictor, resolve_device

CLASSES = ["Happiness", "Sadness", "Neutral"]


def save(path, model, **overrides):
    payload = {"task": "expression", "model": model.state_dict(), "arch": "resnet18_small", "classes": CLASSES,
               "input_size": 32, "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}, "epoch": 3,
               "metrics": {"test_acc": 0.5}, "args": {"lr": 0.001}}
    payload.update(overrides)
    return save_checkpoint(path, payload)


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet18_small", num_classes=3)
    model.train()
    model(torch.randn(8, 3, 32, 32))  # move BatchNorm running statistics off their defaults
    return model.eval(), save(tmp_path / "model.pt", model)


def images(n=3, size=48):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_checkpoint_round_trip_gives_the_models_own_probabilities(trained):
    model, path = trained
    predictor = Predictor.from_checkpoint(path, device="cpu")
    assert predictor.classes == CLASSES and predictor.input_size == 32 and predictor.arch == "resnet18_small"
    batch = images(5)
    probs = predictor.predict(batch, batch_size=2)
    expected_input = torch.stack([
        torch.from_numpy(np.asarray(im.resize((32, 32), Image.BILINEAR), dtype=np.float32)).permute(2, 0, 1)
        for im in batch]) / 127.5 - 1.0
    with torch.no_grad():
        expected = model(expected_input)[1].softmax(1).numpy()
    assert probs.shape == (5, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_predict_accepts_grayscale_and_arrays_and_empty_input(trained):
    predictor = Predictor.from_checkpoint(trained[1], device="cpu")
    grey = Image.new("L", (20, 30), 128)
    assert predictor.predict([grey, np.zeros((10, 10, 3), dtype=np.uint8)]).shape == (2, 3)
    assert predictor.predict([]).shape == (0, 3)


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        Predictor.from_checkpoint(path)


def test_truncated_checkpoint_is_refused(trained, tmp_path):
    data = trained[1].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        Predictor.from_checkpoint(path)


def test_checkpoint_without_class_names_is_refused(tmp_path, trained):
    path = save(tmp_path / "noclasses.pt", trained[0], classes=[])
    with pytest.raises(CheckpointError, match="class names"):
        Predictor.from_checkpoint(path)
    payload = torch.load(trained[1], weights_only=True)
    del payload["classes"]
    torch.save(payload, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="class names"):
        Predictor.from_checkpoint(tmp_path / "missing.pt")


def test_foreign_state_dicts_and_missing_files_are_refused(tmp_path, trained):
    torch.save(build_model("resnet18_small", 3).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not an EmoStudy|no model"):
        Predictor.from_checkpoint(tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="no such"):
        Predictor.from_checkpoint(tmp_path / "absent.pt")
    wrong = save(tmp_path / "wrong.pt", trained[0], arch="resnet18")  # weights of another shape
    with pytest.raises(CheckpointError, match="do not fit"):
        Predictor.from_checkpoint(wrong)
    assert issubclass(CheckpointError, ValueError)


def test_pickled_objects_are_refused_rather_than_executed(tmp_path):
    torch.save({"model": {"w": torch.zeros(1)}, "arch": object()}, tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError):
        Predictor.from_checkpoint(tmp_path / "pickle.pt")


def test_get_predictor_caches_by_file_content(trained, tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copy(trained[1], copy)
    first = get_predictor(trained[1], device="cpu")
    assert get_predictor(copy, device="cpu") is first


def test_va_checkpoint_needs_the_va_predictor(tmp_path):
    model = build_model("va_resnet18_small").eval()
    path = save(tmp_path / "va.pt", model, arch="va_resnet18_small", task="va", classes=[])
    with pytest.raises(CheckpointError, match="'va' checkpoint"):
        Predictor.from_checkpoint(path)
    va = VAPredictor.from_checkpoint(path, device="cpu").predict_va(images(2))
    assert va.shape == (2, 2) and np.abs(va).max() <= 1
    loaded = load_predictor(path, device="cpu")  # what the worker's validation and the demo task use
    assert isinstance(loaded, VAPredictor) and loaded.task == "va" and loaded.classes == ["valence", "arousal"]
    with pytest.raises(CheckpointError, match="no emotion classes"):
        loaded.predict(images(1))


def test_device_resolution_reads_model_device_and_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    assert resolve_device(None).type == "cpu"
    with pytest.raises(ValueError):
        resolve_device("toaster")
