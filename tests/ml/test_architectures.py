"""The emostudy.architectures entry point: a package adds an arch; checkpoints of it load and predict."""
from importlib import metadata

import numpy as np
import pytest
import torch
from PIL import Image

import ml.models
from ml.checkpoints import CheckpointError, save_checkpoint
from ml.predictor import Predictor


@pytest.fixture
def plugins(monkeypatch):
    eps = [metadata.EntryPoint(name="toy", value="tests.ml.toy_arch:build", group="emostudy.architectures"),
           metadata.EntryPoint(name="broken", value="tests.ml.no_such_module:build", group="emostudy.architectures"),
           metadata.EntryPoint(name="liar", value="tests.ml.toy_arch:not_a_module", group="emostudy.architectures")]
    real = metadata.entry_points
    monkeypatch.setattr(ml.models.metadata, "entry_points",
                        lambda **kw: eps if kw.get("group") == "emostudy.architectures" else real(**kw))


def test_a_plugin_architecture_round_trips_through_a_checkpoint(plugins, tmp_path):
    torch.manual_seed(0)
    net = ml.models.build_model("toy", 3).eval()
    path = save_checkpoint(tmp_path / "toy.pt", {"task": "expression", "model": net.state_dict(), "arch": "toy",
                                                  "classes": ["Happiness", "Sadness", "Neutral"], "input_size": 16})
    predictor = Predictor.from_checkpoint(path, device="cpu")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    x = (torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        want = net(x).softmax(1).numpy()
    np.testing.assert_allclose(predictor.predict([image]), want, atol=1e-5)


def test_unknown_broken_and_lying_plugins_give_clear_errors(plugins, tmp_path):
    with pytest.raises(ValueError, match="named architectures: broken, liar, mini_xception, toy"):
        ml.models.build_model("nope", 3)
    with pytest.raises(ValueError, match="'broken'.*failed to load"):
        ml.models.build_model("broken", 3)
    with pytest.raises(ValueError, match="not a torch nn.Module"):
        ml.models.build_model("liar", 3)
    path = save_checkpoint(tmp_path / "b.pt", {"task": "expression", "model": {"w": torch.zeros(1)}, "arch": "broken",
                                                "classes": ["a", "b"], "input_size": 16})
    with pytest.raises(CheckpointError, match="cannot rebuild arch 'broken'"):
        Predictor.from_checkpoint(path)
