"""Bring your own model: TorchScript and ONNX files with a sidecar JSON behave like a Predictor."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ml.checkpoints import CheckpointError
from ml.foreign import validate_sidecar
from ml.predictor import Predictor, get_predictor, load_predictor
from tests.onnx_writer import linear_classifier

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def images(n=4, size=40):
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (size, size + 7, 3), dtype=np.uint8)) for _ in range(n)]


def write_sidecar(path, **spec):
    path.with_name(path.name + ".json").write_text(json.dumps(spec))


def test_torchscript_model_gives_the_same_probabilities_as_the_native_checkpoint(tmp_path):
    from ml.checkpoints import save_checkpoint
    from ml.models import build_model

    torch.manual_seed(0)
    model = build_model("mini_xception", 7).eval()
    native = save_checkpoint(tmp_path / "native.pt", {
        "task": "expression", "model": model.state_dict(), "arch": "mini_xception", "classes": CLASSES,
        "input_size": 64, "channels": 1, "normalization": {"mean": [0.5], "std": [0.5]}})

    class LogitsOnly(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[1]

    scripted = tmp_path / "fer.torchscript.pt"
    torch.jit.save(torch.jit.trace(LogitsOnly(model), torch.zeros(1, 1, 64, 64)), str(scripted))
    write_sidecar(scripted, format="torchscript", classes=CLASSES, input_size=64, channels="grayscale",
                  mean=[0.5], std=[0.5], outputs="logits", training_data="FER2013", training_domain="photo",
                  licence="MIT")
    foreign = load_predictor(scripted, device="cpu")
    assert foreign.classes == CLASSES and foreign.training_data == "FER2013" and foreign.metrics["licence"] == "MIT"
    want = Predictor.from_checkpoint(native, device="cpu").predict(images())
    np.testing.assert_allclose(foreign.predict(images()), want, atol=1e-5)
    assert get_predictor(scripted, device="cpu") is get_predictor(scripted, device="cpu")  # cached per process


def test_onnx_model_runs_through_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(3 * 16 * 16, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    path = linear_classifier(tmp_path / "lin.onnx", weight, bias, (3, 16, 16))
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    write_sidecar(path, format="onnx", classes=["Happiness", "Sadness", "Neutral"], input_size=16, channels="rgb",
                  mean=mean, std=std, outputs="logits", training_data="toy")
    predictor = load_predictor(path, device="cpu")
    got = predictor.predict(images(3))
    x = np.stack([np.asarray(im.convert("RGB").resize((16, 16), Image.BILINEAR), np.float32).transpose(2, 0, 1) / 255
                  for im in images(3)])
    x = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    logits = x.reshape(3, -1) @ weight + bias
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), atol=1e-4)


def test_probability_outputs_are_renormalised_and_wrong_shapes_are_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    weight = np.zeros((1 * 8 * 8, 4), np.float32)
    bias = np.array([0.2, 0.2, 0.4, 0.2], np.float32)
    path = linear_classifier(tmp_path / "p.onnx", weight, bias, (1, 8, 8))
    write_sidecar(path, format="onnx", classes=["a", "b", "c", "d"], input_size=8, channels="grayscale",
                  mean=[0], std=[1], outputs="probabilities")
    np.testing.assert_allclose(load_predictor(path).predict(images(2)), [[0.2, 0.2, 0.4, 0.2]] * 2, atol=1e-6)
    write_sidecar(path, format="onnx", classes=["a", "b", "c"], input_size=8, channels="grayscale", mean=[0], std=[1])
    with pytest.raises(CheckpointError, match=r"gives 4 values per image, but its description lists 3 class names"):
        load_predictor(path)


def test_a_valence_arousal_sidecar_makes_a_regressor_that_predicts_no_classes(tmp_path):
    pytest.importorskip("onnxruntime")
    weight = np.zeros((1 * 8 * 8, 2), np.float32)
    path = linear_classifier(tmp_path / "va.onnx", weight, np.array([0.3, -2.0], np.float32), (1, 8, 8))
    write_sidecar(path, format="onnx", outputs="valence_arousal", input_size=8, channels="grayscale")
    model = load_predictor(path)
    assert model.has_va and model.task == "va" and model.classes == ["valence", "arousal"]
    np.testing.assert_allclose(model.predict_va(images(2)), [[0.3, -1.0]] * 2, atol=1e-6)  # clipped to [-1, 1]
    with pytest.raises(CheckpointError, match="no emotion classes"):
        model.predict(images(1))
    write_sidecar(path, format="onnx", outputs="valence_arousal", input_size=8, channels="grayscale",
                  classes=["happy", "sad"])
    with pytest.raises(CheckpointError, match="valence/arousal model's 'classes'"):
        load_predictor(path)


@pytest.mark.parametrize("spec, problem", [
    ({"format": "keras", "classes": ["a", "b"], "input_size": 8}, "format"),
    ({"format": "onnx", "classes": ["a"], "input_size": 8}, "classes"),
    ({"format": "onnx", "classes": ["a", "a"], "input_size": 8}, "duplicate"),
    ({"format": "onnx", "classes": ["a", "b"], "input_size": 3}, "input_size"),
    ({"format": "onnx", "classes": ["a", "b"], "input_size": 8, "channels": "grayscale", "mean": [0.5, 0.5, 0.5]},
     "mean"),
    ({"format": "onnx", "classes": ["a", "b"], "input_size": 8, "std": [1, 0, 1]}, "positive"),
    ({"format": "onnx", "classes": ["a", "b"], "input_size": 8, "outputs": "scores"}, "outputs"),
])
def test_bad_sidecars_are_refused_with_the_reason(spec, problem):
    with pytest.raises(CheckpointError, match=problem):
        validate_sidecar(spec)


def test_a_garbage_file_with_a_sidecar_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a model")
    write_sidecar(path, format="torchscript", classes=["a", "b"], input_size=8)
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_predictor(path)
    bad_json = tmp_path / "x.onnx"
    bad_json.write_bytes(b"x")
    bad_json.with_name("x.onnx.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="JSON"):
        load_predictor(bad_json)
