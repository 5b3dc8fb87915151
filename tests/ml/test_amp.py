"""Mixed precision: one AMP step on CUDA (marked gpu); on CPU the same code path runs with autocast off."""
import pytest
import torch

from ml.train import default_args, fit, setup


def _args(tmp_path, method, **extra):
    return default_args(method=method, arch="resnet18_small", epochs=1, batch_size=8, image_size=32, workers=0,
                        limit_batches=1, out=str(tmp_path / method), lr_steps=[1], progress=False, curves=False,
                        synthetic_n=16, synthetic_test_n=8, threads=1, **extra)


@pytest.mark.parametrize("method", ["ce", "uapl"])
def test_cpu_ignores_amp_and_trains_through_the_scaler_path(tmp_path, method):
    run = setup(_args(tmp_path, method, device="cpu", amp=True))
    assert run.amp is False and not run.scaler.is_enabled()
    before = [p.detach().clone() for p in run.model.parameters()]
    metrics = fit(run)
    assert metrics["epoch"] == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=False))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["ce", "uldl", "uapl"])
def test_one_amp_step_on_cuda(tmp_path, method):
    run = setup(_args(tmp_path, method, device="cuda", amp=True))
    assert run.amp is True and run.scaler.is_enabled()
    metrics = fit(run)
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))
    assert run.scaler.get_scale() > 0
    if run.objective is not None:
        assert torch.isfinite(run.objective.factors.values()).all()
