"""Training losses: the balanced MSE for batches that mix noise levels."""

import doctest

import pytest
import torch
import torch.nn.functional as F

from napari_deconvnet.core import losses
from napari_deconvnet.core.losses import balanced_mse, resolve_loss


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(4, 1, 8, 8, generator=g)
    # errors from 0.003 to 0.3: a 1000-photon sample beside a 5-photon one
    scale = torch.tensor([0.003, 0.03, 0.1, 0.3]).view(4, 1, 1, 1)
    pred = (target + scale * torch.randn(4, 1, 8, 8, generator=g)).requires_grad_(True)
    return pred, target


def test_value_is_plain_mse():
    pred, target = _batch()
    value = balanced_mse(pred, target).detach()
    assert float(value) == pytest.approx(float(F.mse_loss(pred, target).detach()))


def test_gradient_is_that_of_mean_psnr_at_mse_scale():
    pred, target = _batch(1)
    (grad,) = torch.autograd.grad(balanced_mse(pred, target), pred)
    per_sample = (pred - target).square().flatten(1).mean(1)
    mean_log = torch.log(per_sample).mean()  # minus mean PSNR, up to 10 / ln 10
    (ref,) = torch.autograd.grad(mean_log, pred)
    ref = ref * float(per_sample.detach().mean())
    torch.testing.assert_close(grad, ref, rtol=1e-5, atol=1e-9)
    # the cleanest sample's pull is ~10^4 x stronger than under plain MSE
    (plain,) = torch.autograd.grad(F.mse_loss(pred, target), pred)
    ratio = grad.flatten(1).norm(dim=1) / plain.flatten(1).norm(dim=1)
    assert ratio[0] / ratio[3] > 1000


def test_equal_samples_get_plain_mse_gradient():
    target = torch.zeros(3, 1, 4, 4)
    pred = torch.ones(3, 1, 4, 4).mul(0.2).requires_grad_(True)
    (grad,) = torch.autograd.grad(balanced_mse(pred, target), pred)
    (plain,) = torch.autograd.grad(F.mse_loss(pred, target), pred)
    torch.testing.assert_close(grad, plain)


def test_masked_pixels_and_perfect_samples():
    pred = torch.tensor([0.5, 0.2, 0.0])
    assert float(balanced_mse(pred, torch.zeros(3))) == pytest.approx(float(pred.square().mean()))
    exact = torch.zeros(2, 1, 4, 4, requires_grad=True)
    value = balanced_mse(exact, torch.zeros(2, 1, 4, 4))
    (grad,) = torch.autograd.grad(value, exact)
    assert float(value) == 0.0 and torch.isfinite(grad).all()


def test_resolved_by_name_and_doctest():
    name, fn = resolve_loss("balanced-mse", "supervised", 0.5)
    assert name == "balanced-mse" and fn is balanced_mse
    with pytest.raises(ValueError, match="balanced-mse"):
        resolve_loss("psnr", "supervised", 0.5)
    assert doctest.testmod(losses).failed == 0


def test_hdr_mse_is_plain_mse_up_to_one_and_relative_above():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(2, 1, 8, 8, generator=g)  # a scene in [0, 1]
    pred = target + 0.05 * torch.randn(2, 1, 8, 8, generator=g)
    pred = pred.clamp(max=1.0)
    assert float(losses.hdr_mse(pred, target)) == pytest.approx(float(F.mse_loss(pred, target)))
    # above 1 the error is relative: 10% off at 100 costs what 10% off at 2 costs
    at_100 = losses.hdr_mse(torch.tensor([110.0]), torch.tensor([100.0]))
    at_2 = losses.hdr_mse(torch.tensor([2.2]), torch.tensor([2.0]))
    assert float(at_100) == pytest.approx(float(at_2), rel=1e-5)
    assert float(at_100) < 0.01 < float(F.mse_loss(torch.tensor([110.0]), torch.tensor([100.0])))
    # continuous with slope 1 at 1: the gradient does not jump there
    x = torch.tensor([1 - 1e-4, 1 + 1e-4], requires_grad=True)
    losses._tone(x).sum().backward()
    assert torch.allclose(x.grad, torch.ones(2), atol=1e-3)
    # a bright object's noise no longer rules the loss of a dim scene beside it
    scene_err = torch.full((1, 1, 16, 16), 0.02)
    target = torch.zeros(1, 1, 16, 16)
    target[..., 8, 8] = 300.0
    pred = target + scene_err
    pred[..., 8, 8] = 330.0
    plain, hdr = F.mse_loss(pred, target), losses.hdr_mse(pred, target)
    assert float(plain) > 3.0 and float(hdr) < 1e-3
    name, fn = resolve_loss("hdr-mse", "supervised", 0.5)
    assert name == "hdr-mse" and fn is losses.hdr_mse
    pred.requires_grad_()
    (grad,) = torch.autograd.grad(losses.hdr_mse(pred, target), pred)
    assert torch.isfinite(grad).all()
