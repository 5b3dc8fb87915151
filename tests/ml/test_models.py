"""Every network runs forward and backward on torch.randn; AdaptiveSimNet stays in its range."""
import math

import pytest
import torch
import torchvision

from ml.models import AdaptiveSimNet, UAPLNet, VARegressor, build_model, parse_arch
from ml.models.backbones import build_backbone


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("resnet50", 2048), ("resnet18_small", 128),
                                       ("uapl_resnet18_small", 128)])
def test_classifier_forward_backward(arch, dim):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7)
    features, logits = model(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, dim) and logits.shape == (2, 7)
    logits.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_uapl_weights_patches_and_fuses_them():
    torch.manual_seed(0)
    model = build_model("uapl_resnet18_small", num_classes=3)
    assert isinstance(model, UAPLNet)
    x = torch.randn(2, 3, 64, 64)
    patches = model.patch_features(x)
    weights = model.attention_weights(x)
    assert patches.shape == (2, 9, 128) and weights.shape == (2, 9)  # the default 3 x 3 patch grid
    assert ((weights > 0) & (weights < 1)).all()
    fused = (weights.unsqueeze(-1) * patches).sum(1) / weights.sum(1, keepdim=True)
    assert torch.allclose(model.features(x), fused, atol=1e-6)


def test_va_regressor_outputs_two_values_in_unit_range_with_gradients():
    model = build_model("va_resnet18_small")
    assert isinstance(model, VARegressor)
    out = model(torch.randn(3, 3, 32, 32) * 50)
    assert out.shape == (3, 2) and out.abs().max() <= 1
    out.sum().backward()
    assert model.head.weight.grad is not None


def test_adaptive_simnet_output_lies_between_sigmoid_minus_1_3_and_1():
    torch.manual_seed(0)
    asn = AdaptiveSimNet(feature_dim=4)
    with torch.no_grad():
        asn.net[-1].bias.fill_(-100.0)  # every logit far below the floor
    s = asn(torch.randn(3, 4), torch.randn(3, 5, 4))
    assert s.shape == (3, 5)
    assert torch.allclose(s, torch.full_like(s, 1 / (1 + math.exp(1.3))))
    with torch.no_grad():
        asn.net[-1].bias.fill_(100.0)
    s_high = asn(torch.randn(3, 4), torch.randn(3, 5, 4))
    assert (s_high <= 1).all() and (s_high > 0.99).all()


def test_adaptive_simnet_passes_gradient_to_anchor_but_not_below_the_floor():
    torch.manual_seed(0)
    asn = AdaptiveSimNet(feature_dim=4)
    anchor = torch.randn(2, 4, requires_grad=True)
    asn(anchor, torch.randn(2, 3, 4)).sum().backward()
    assert anchor.grad.abs().sum() > 0
    with torch.no_grad():
        asn.net[-1].bias.fill_(-100.0)
    anchor.grad = None
    asn(anchor, torch.randn(2, 3, 4)).sum().backward()
    assert anchor.grad.abs().sum() == 0  # the clamp passes no gradient below -1.3 (ref §3.2)


def test_pretrained_backbone_loads_a_local_torchvision_state_dict(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone("resnet18", pretrained=path)
    assert torch.equal(backbone.stem[0].weight, reference.conv1.weight)
    assert torch.equal(backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_unknown_arch_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="resnet18"):
        parse_arch("vgg16")
    with pytest.raises(ValueError, match="2 classes"):
        build_model("resnet18_small", num_classes=1)
