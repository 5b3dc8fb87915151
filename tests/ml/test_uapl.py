"""UAPL: patch modes (cropped, pooled), attention, fused feature, attention targets, task guidance loss, training."""
import pytest
import torch

from ml.models import build_model
from ml.models.uapl import UAPLNet, task_guidance_loss


def test_forward_patches_shapes_and_fused_feature_is_attention_weighted_mean():
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 7, grid=3)
    assert isinstance(model, UAPLNet) and model.patch_mode == "stem"  # the default since the occlusion study
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


def test_pooled_patches_run_the_last_stage_at_stride_one_so_the_map_is_finer():
    plain = build_model("resnet18_small", 7)
    uapl = build_model("uapl_resnet18_small", 7, patches="pool")
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
    out = task_guidance_loss(patch_logits, attention, target, attention_target="absolute")
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
    assert build_model_from_checkpoint(ckpt).patch_mode == "pool"  # checkpoints from before the patch modes
    cropped = build_model("uapl_resnet18_small", 3, grid=2, patches="stem")
    ckpt.update(model=cropped.state_dict(), args={"uapl_grid": 2, "uapl_patches": "stem"})
    assert build_model_from_checkpoint(ckpt).patch_mode == "stem"


@pytest.mark.parametrize("mode", ["stem", "layer1"])
def test_cropped_patches_see_only_their_own_region(mode):
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 7, grid=3, patches=mode).eval()
    assert model.patch_mode == mode
    x = torch.randn(1, 3, 48, 48)
    changed = x.clone()
    changed[..., 32:, 32:] = 0  # the bottom-right patch's region only
    with torch.no_grad():
        diff = (model.patch_features(x) - model.patch_features(changed)).abs().sum(-1)[0]
    assert diff.argmax() == 8
    # far regions do not see the change (stem: not at all; layer1's 3x3 convs before the crop leak a little)
    assert diff[0] < (1e-6 if mode == "stem" else 2e-2) * diff[8]
    # the pooled last-stage cells (the first version) all see it: the reason for cropping
    pooled = build_model("uapl_resnet18_small", 7, grid=3, patches="pool").eval()
    with torch.no_grad():
        pooled_diff = (pooled.patch_features(x) - pooled.patch_features(changed)).abs().sum(-1)[0]
    assert pooled_diff[0] > 0.1 * pooled_diff.max()


def test_cropped_patches_shapes_for_a_map_the_grid_does_not_divide_and_gradient_reaches_the_stem():
    model = build_model("uapl_resnet18_small", 7, grid=3, patches="stem")
    x = torch.randn(2, 3, 40, 40)  # stem map 10x10, resampled to 9x9 = 3x3 regions of 3x3
    out = model.forward_patches(x)
    assert out["patches"].shape == (2, 9, 128) and out["logits"].shape == (2, 7)
    out["logits"].sum().backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    assert model.backbone.layer1[0].conv1.stride == (1, 1) and model.backbone.layer4[0].conv1.stride == (2, 2)
    with pytest.raises(ValueError, match="patch mode"):
        build_model("uapl_resnet18_small", 7, patches="image")


def test_relative_attention_target_is_support_over_the_images_best_patch():
    from ml.models.uapl import attention_targets

    probs = torch.tensor([[[0.8, 0.1, 0.1], [0.4, 0.3, 0.3], [1 / 3, 1 / 3, 1 / 3]],
                          [[0.2, 0.4, 0.4], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    absolute = attention_targets(probs, target, "absolute")
    assert torch.allclose(absolute, torch.tensor([[0.8, 0.4, 1 / 3], [0.4, 0.45, 0.2]]))
    relative = attention_targets(probs, target, "relative")
    assert torch.allclose(relative, absolute / absolute.amax(1, keepdim=True))
    assert torch.allclose(relative.amax(1), torch.ones(2))  # the best patch of every image gets 1
    # a blank (uniform) patch gets a lower target than an informative one, in both kinds
    assert relative[0, 2] < relative[0, 0] and absolute[0, 2] < absolute[0, 0]
    # an image whose patches all back the label weakly still ranks them (absolute would be ~flat)
    weak = torch.tensor([[[0.18, 0.41, 0.41], [0.15, 0.425, 0.425]]])
    rel = attention_targets(weak, torch.tensor([[1.0, 0.0, 0.0]]), "relative")
    assert rel[0, 0] == 1 and rel[0, 1] < 0.85
    with pytest.raises(ValueError, match="attention target"):
        attention_targets(probs, target, "softmax")


def test_relative_target_is_detached_so_the_attention_term_trains_only_the_attention():
    torch.manual_seed(0)
    patch_logits = torch.randn(2, 4, 3, requires_grad=True)
    attention = torch.full((2, 4), 0.5, requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    only_patch = task_guidance_loss(patch_logits, attention, target, attention_weight=0.0,
                                    attention_target="relative")
    (grad_patch_only,) = torch.autograd.grad(only_patch["loss"], patch_logits)
    both = task_guidance_loss(patch_logits, attention, target, attention_target="relative")
    grad_logits, grad_attention = torch.autograd.grad(both["loss"], [patch_logits, attention])
    assert torch.allclose(grad_logits, grad_patch_only)  # no gradient from the attention BCE into the patches' heads
    # the weight of each image's best patch is pushed up (target 1), the others towards their fraction
    best = (patch_logits.softmax(-1) * target.unsqueeze(1)).sum(-1).argmax(1)
    assert (grad_attention[torch.arange(2), best] < 0).all()


def test_uapl_trains_one_step_with_cropped_patches_and_relative_target(tmp_path):
    from ml.checkpoints import build_model_from_checkpoint, load_checkpoint
    from ml.train import default_args, train

    args = default_args(method="uapl", arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                        limit_batches=1, out=str(tmp_path / "run"), lr_steps=[1], progress=False,
                        dataset="synthetic", synthetic_n=24, synthetic_test_n=8, curves=False, threads=1,
                        synthetic_occlusion_rate=0.5, uapl_patches="stem", uapl_attention_target="relative")
    train(args)
    model = build_model_from_checkpoint(load_checkpoint(tmp_path / "run" / "last.pt"))
    assert model.patch_mode == "stem"


def test_position_target_compares_a_patch_with_the_same_region_in_the_other_images():
    from ml.models.uapl import attention_targets

    # 3 images x 2 positions; position 0 (a forehead) never backs the label, position 1 (a mouth) usually does
    support_of_class0 = torch.tensor([[0.2, 0.8], [0.2, 0.8], [0.2, 0.2]])  # image 2's mouth is hidden
    probs = torch.stack([support_of_class0, (1 - support_of_class0) / 2, (1 - support_of_class0) / 2], dim=-1)
    target = torch.tensor([[1.0, 0.0, 0.0]]).expand(3, 3)
    position = attention_targets(probs, target, "position")
    mouth_mean = (0.8 + 0.8 + 0.2) / 3
    assert torch.allclose(position[:, 0], torch.ones(3))  # the uninformative forehead is not suspect
    assert torch.allclose(position[2, 1], torch.tensor(0.2 / mouth_mean))
    assert torch.allclose(position[:2, 1], torch.ones(2))  # above the region's mean: capped at 1
    # image-relative targets would rank the hidden mouth like the forehead instead
    relative = attention_targets(probs, target, "relative")
    assert relative[2, 1] == relative[2, 0] and relative[0, 0] < 1


def test_global_feature_adds_the_whole_faces_feature_to_the_weighted_patches():
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 5, grid=3, patches="stem", global_feature=True).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out = model.forward_patches(x)
        whole = model.backbone.forward_map(x).mean(dim=(2, 3))  # crop modes keep the backbone's strides
    assert torch.allclose(out["features"], whole + model.fuse(out["patches"], out["attention"]), atol=1e-5)
    assert torch.allclose(model(x)[1], model.classifier(out["features"]), atol=1e-5)
    from ml.checkpoints import build_model_from_checkpoint

    ckpt = {"arch": "uapl_resnet18_small", "classes": list("abcde"), "model": model.state_dict(),
            "args": {"uapl_patches": "stem", "uapl_global_feature": True}}
    assert build_model_from_checkpoint(ckpt).global_feature is True


def test_whole_face_branch_adds_a_uldl_network_beside_the_patches():
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", 5, grid=3, patches="stem", whole_face_branch=True).eval()
    assert model.whole_face.backbone is not model.backbone  # its own weights, not the patches'
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out = model.forward_patches(x)
        whole_features, whole_logits = model.whole_face(x)
        patch_logits = model.classifier(model.fuse(out["patches"], out["attention"]))
        features, logits = model(x)
    assert torch.allclose(out["whole_logits"], whole_logits)
    assert torch.allclose(out["logits"], whole_logits + patch_logits, atol=1e-5)
    assert torch.allclose(features, whole_features) and torch.allclose(logits, out["logits"])
    assert out["features"].shape == (2, model.feature_dim)  # ULDL's centre loss and neighbours see this feature
    from ml.checkpoints import build_model_from_checkpoint

    ckpt = {"arch": "uapl_resnet18_small", "classes": list("abcde"), "model": model.state_dict(),
            "args": {"uapl_patches": "stem", "uapl_whole_face_branch": True}}
    rebuilt = build_model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        assert torch.allclose(rebuilt(x)[1], logits, atol=1e-5)
    with pytest.raises(ValueError, match="choose one"):
        build_model("uapl_resnet18_small", 5, global_feature=True, whole_face_branch=True)


def test_uapl_trains_with_the_whole_face_branch(tmp_path):
    from ml.checkpoints import build_model_from_checkpoint, load_checkpoint
    from ml.train import TrainingInputError, default_args, train

    common = dict(method="uapl", arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                  limit_batches=1, lr_steps=[1], progress=False, dataset="synthetic", synthetic_n=24,
                  synthetic_test_n=8, curves=False, threads=1, synthetic_occlusion_rate=0.5, uapl_patches="stem")
    train(default_args(**common, out=str(tmp_path / "run"), uapl_whole_face_branch=True))
    model = build_model_from_checkpoint(load_checkpoint(tmp_path / "run" / "last.pt"))
    assert model.whole_face is not None and not model.uniform_attention
    # the ablation that measures the attention: the same model with every patch weighing 1
    train(default_args(**common, out=str(tmp_path / "uniform"), uapl_whole_face_branch=True,
                       uapl_uniform_attention=True))
    model = build_model_from_checkpoint(load_checkpoint(tmp_path / "uniform" / "last.pt"))
    assert model.whole_face is not None and model.uniform_attention
    with pytest.raises(TrainingInputError, match="choose one"):
        train(default_args(**common, out=str(tmp_path / "both"), uapl_whole_face_branch=True,
                           uapl_global_feature=True))


def _two_branch_run(tmp_path, ldl_branch: str):
    from ml.train import default_args, setup

    args = default_args(method="uapl", arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                        out=str(tmp_path / ldl_branch), lr_steps=[1], progress=False, dataset="synthetic",
                        synthetic_n=16, synthetic_test_n=8, curves=False, threads=1, uapl_patches="stem",
                        uapl_whole_face_branch=True, uapl_ldl_branch=ldl_branch, seed=0)
    return setup(args)


@pytest.mark.parametrize("ldl_branch", ["fused", "whole"])
def test_ldl_branch_decides_which_logits_fill_the_neighbour_bank_and_move_lambda(tmp_path, ldl_branch):
    """--uapl-ldl-branch whole: the bank holds the whole-face branch's predictions (warm-up and steps), as ULDL's."""
    from ml.train import _step_ldl

    run = _two_branch_run(tmp_path, ldl_branch)
    model = run.model.train()
    warmed = []
    run.bank.update = lambda index, features, probs: warmed.append(probs.detach().clone())
    run.bank.warm(model.whole_face if ldl_branch == "whole" else model, run.warm_loader, run.device)
    batch = next(iter(run.train_loader))
    x, labels, index = batch["image"], batch["label"].long(), batch["index"].long()
    with torch.no_grad():  # the same weights and batch statistics the step will see
        out = model.forward_patches(x)
    whole, fused = out["whole_logits"].softmax(1), out["logits"].softmax(1)
    assert not torch.allclose(whole, fused, atol=1e-4)
    lam_before = run.objective.factors.peek(index).clone()
    warmed.clear()
    _, logits, _ = _step_ldl(run, batch, x, labels, index)
    stored = warmed[0]
    assert torch.allclose(stored, whole if ldl_branch == "whole" else fused, atol=1e-5)
    assert torch.allclose(logits.softmax(1), fused, atol=1e-5)  # accuracy is always the fused output's
    assert not torch.equal(run.objective.factors.peek(index), lam_before)  # lam learns in both


def test_ldl_branch_whole_needs_the_whole_face_branch(tmp_path):
    from ml.train import TrainingInputError, default_args, setup

    args = default_args(method="uapl", arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                        out=str(tmp_path / "r"), progress=False, dataset="synthetic", synthetic_n=16,
                        synthetic_test_n=8, threads=1, uapl_ldl_branch="whole")
    with pytest.raises(TrainingInputError, match="--uapl-whole-face-branch"):
        setup(args)
