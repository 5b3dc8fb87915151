"""UAPL: patch grid on a stride-1 last stage, attention, fused feature, task guidance loss, training step."""
import pytest
import torch

from ml.models import build_model
from ml.models.uapl import UAPLNet, task_guidance_loss


def test_forward_patches_shapes_and_fused_feature_is_attention_weighted_mean():
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 7, grid=3)
    assert isinstance(model, UAPLNet)
    x = torch.randn(4, 3, 48, 48)
    out = model.forward_patches(x)
    assert out["patches"].shape == (4, 9, 128)
    assert out["patch_logits"].shape == (4, 9, 7)
    assert out["attention"].shape == (4, 9)
    assert ((out["attention"] > 0) & (out["attention"] < 1)).all()
    w = out["attention"].unsqueeze(-1)
    expected = (w * out["patches"]).sum(1) / w.sum(1)
    assert torch.allclose(out["features"], expected, atol=1e-5)
    assert torch.allclose(out["logits"], model.classifier(expected), atol=1e-5)
    model.eval()
    features, logits = model(x)  # the Predictor's contract: (B, D), (B, C)
    assert features.shape == (4, 128) and logits.shape == (4, 7)


def test_last_stage_runs_at_stride_one_so_the_map_is_finer():
    plain = build_model("resnet18_small", 7)
    uapl = build_model("uapl_resnet18_small", 7)
    x = torch.randn(2, 3, 64, 64)
    assert plain.backbone.forward_map(x).shape[-1] == 2
    assert uapl.backbone.forward_map(x).shape[-1] == 4


def test_patch_boxes_tile_the_image_row_major():
    model = build_model("uapl_resnet18_small", 3, grid=2)
    assert model.patch_boxes(48) == [(0, 0, 24, 24), (24, 0, 48, 24), (0, 24, 24, 48), (24, 24, 48, 48)]
    with pytest.raises(ValueError, match="grid"):
        build_model("uapl_resnet18_small", 3, grid=0)


def test_task_guidance_loss_backward_reaches_patches_and_attention_and_lowers_weight_of_unhelpful_patch():
    patch_logits = torch.zeros(1, 2, 3, requires_grad=True)
    with torch.no_grad():
        patch_logits[0, 0, 0] = 5.0  # patch 0 backs class 0, patch 1 is uninformative
    attention = torch.full((1, 2), 0.5, requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 0.0]])
    out = task_guidance_loss(patch_logits, attention, target)
    out["loss"].backward()
    assert patch_logits.grad.abs().sum() > 0
    # gradient descent raises the weight of the supporting patch and lowers the other's
    assert attention.grad[0, 0] < 0 < attention.grad[0, 1]


def test_uapl_trains_one_step_with_guidance(tmp_path):
    from ml.train import default_args, train
    from tests.ml.test_train import tiny_args  # noqa: F401  (same tiny settings)

    args = default_args(method="uapl", arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                        limit_batches=1, out=str(tmp_path / "run"), lr_steps=[1], progress=False,
                        dataset="synthetic", synthetic_n=24, synthetic_test_n=8, curves=False, threads=1,
                        synthetic_occlusion_rate=0.5)
    metrics = train(args)
    assert metrics["arch"] == "uapl_resnet18_small"
    assert (tmp_path / "run" / "lambdas.csv").is_file()


def test_checkpoint_rebuilds_uapl_with_its_grid():
    from ml.checkpoints import build_model_from_checkpoint

    model = build_model("uapl_resnet18_small", 3, grid=2)
    ckpt = {"arch": "uapl_resnet18_small", "classes": ["a", "b", "c"], "model": model.state_dict(),
            "args": {"uapl_grid": 2}}
    assert build_model_from_checkpoint(ckpt).grid == 2
    ckpt["args"] = {}
    assert build_model_from_checkpoint(ckpt).grid == 3
