"""Training losses: pixel L1, multi-scale VGG perceptual L1, hinge GAN."""

from __future__ import annotations

import pytest
import torch

from imf.cache import FetchError
from imf.errors import ConfigError
from imf.train.losses import (
    PerceptualLossConfig,
    PixelL1,
    VGGPerceptualLoss,
    d_hinge_loss,
    g_hinge_loss,
)


@pytest.fixture(scope="module")
def random_vgg_loss():
    torch.manual_seed(0)
    return VGGPerceptualLoss(PerceptualLossConfig(pretrained=False))


def test_pixel_l1():
    x = torch.zeros(2, 3, 4, 4)
    assert PixelL1()(x, x + 0.25).item() == pytest.approx(0.25)


def test_perceptual_zero_for_equal_positive_otherwise(random_vgg_loss):
    x = torch.rand(1, 3, 32, 32)
    assert random_vgg_loss(x, x.clone()).item() == 0.0
    assert random_vgg_loss(x, (x + 0.1 * torch.randn_like(x)).clamp(0, 1)).item() > 0


def test_perceptual_gradients_reach_input_not_vgg(random_vgg_loss):
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    target = torch.rand(1, 3, 32, 32, requires_grad=True)
    random_vgg_loss(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None  # the target is ground truth: its branch runs under no_grad
    params = list(random_vgg_loss.parameters())
    assert len(params) == 22  # 11 convs up to relu5_1: frozen, never updated
    assert all(not p.requires_grad and p.grad is None for p in params)
    random_vgg_loss.train()
    assert not any(m.training for m in random_vgg_loss.modules())


def test_small_scales_skip_layers_that_do_not_fit():
    torch.manual_seed(0)
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    only = lambda l: VGGPerceptualLoss(PerceptualLossConfig(  # noqa: E731
        scales=(1.0,), layer_weights=tuple(float(i == l) for i in range(5)), pretrained=False))
    assert only(3)(x, y).item() > 0  # relu4_1 sees 8 / 2^3 = 1x1: computed
    assert only(4)(x, y).item() == 0.0  # relu5_1 would see 0.5 px: skipped, not a crash
    assert only(4)(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).item() > 0
    # 64x64 frames with all 4 scales (the 1/8 scale is 8x8) and all layers: finite.
    full = VGGPerceptualLoss(PerceptualLossConfig(pretrained=False))
    assert torch.isfinite(full(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)))


def test_perceptual_layer_weights_scale_the_loss():
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    torch.manual_seed(0)
    one = VGGPerceptualLoss(PerceptualLossConfig(pretrained=False))
    torch.manual_seed(0)
    three = VGGPerceptualLoss(PerceptualLossConfig(layer_weights=(3.0,) * 5, pretrained=False))
    torch.testing.assert_close(three(x, y), 3 * one(x, y))


def test_perceptual_pretrained_runs():
    try:
        loss = VGGPerceptualLoss()
    except FetchError as err:
        pytest.skip(f"VGG weights unavailable: {err}")
    x = torch.rand(1, 3, 16, 16)
    assert loss(x, x).item() == 0.0
    assert loss(x, x.flip(-1)).item() > 0


@pytest.mark.parametrize("taps, convs_per_tap", [("first", (1, 3, 5, 8, 11)), ("last", (2, 4, 7, 10, 13))])
def test_perceptual_taps_end_at_the_named_relus(taps, convs_per_tap):
    """"first" = relu1_1..relu5_1 (FOMM), "last" = relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: each slice
    ends on a ReLU, after the stated number of VGG16 convs."""
    loss = VGGPerceptualLoss(PerceptualLossConfig(taps=taps, pretrained=False))
    seen = 0
    for n, s in zip(convs_per_tap, loss.slices):
        assert isinstance(s[-1], torch.nn.ReLU)
        seen += sum(isinstance(m, torch.nn.Conv2d) for m in s)
        assert seen == n


def test_gaussian_pyramid_blurs_before_subsampling():
    from imf.train.losses import gaussian_blur

    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.5), flat)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]).remainder(2).float().expand(1, 3, 16, 16)
    gauss = VGGPerceptualLoss(PerceptualLossConfig(pyramid="gaussian", pretrained=False))._downscale(checker, 0.5)
    area = VGGPerceptualLoss(PerceptualLossConfig(pyramid="area", pretrained=False))._downscale(checker, 0.5)
    assert gauss.shape == area.shape == (1, 3, 8, 8)
    torch.testing.assert_close(area, torch.full_like(area, 0.5))  # a 2x2 box averages the checkerboard
    # FOMM's σ = 0.5 blur at scale 1/2: softened towards the mean, neither the box average nor raw 0/1 samples
    assert 0.05 < gauss.min() < 0.45 and 0.05 < gauss.max() < 0.95 and (gauss - area).abs().max() > 0.1


def test_perceptual_config_validation():
    with pytest.raises(ConfigError, match="taps"):
        PerceptualLossConfig(taps="middle")
    with pytest.raises(ConfigError, match="pyramid"):
        PerceptualLossConfig(pyramid="lanczos")
    with pytest.raises(ConfigError, match="5 values"):
        PerceptualLossConfig(layer_weights=(1.0, 1.0))
    with pytest.raises(ConfigError, match="scales"):
        PerceptualLossConfig(scales=(1.0, 2.0))
    with pytest.raises(ConfigError, match=">= 0"):
        PerceptualLossConfig(layer_weights=(1.0, -1.0, 1.0, 1.0, 1.0))


def test_hinge_losses_known_values():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - r) = 0, 0.5, 2   -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + f) = 0, 1, 2     -> mean 1
    assert d_hinge_loss(real, fake).item() == pytest.approx(5 / 6 + 1)
    assert g_hinge_loss(fake).item() == pytest.approx(1 / 3)
    # Two discriminator scales: summed.
    real2 = [real, torch.full((1, 1, 2, 2), 3.0)]  # second scale: 0
    fake2 = [fake, torch.full((1, 1, 2, 2), -0.5)]  # second scale: 0.5
    assert d_hinge_loss(real2, fake2).item() == pytest.approx(5 / 6 + 1 + 0.5)
    assert g_hinge_loss(fake2).item() == pytest.approx(1 / 3 + 0.5)


def test_hinge_gradients_and_errors():
    fake = torch.tensor([-2.0, 0.0, 1.0], requires_grad=True)
    d_hinge_loss(torch.tensor([0.0]), fake).backward()
    torch.testing.assert_close(fake.grad, torch.tensor([0.0, 1 / 3, 1 / 3]))  # no gradient past the margin
    with pytest.raises(ValueError, match="scales"):
        d_hinge_loss([torch.zeros(1)], [torch.zeros(1), torch.zeros(1)])
    with pytest.raises(ValueError, match="non-empty"):
        g_hinge_loss([])
