"""L1, PSNR, SSIM, MS-SSIM: identities, known values, and parity with scikit-image."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from imf.eval.metrics import l1, ms_ssim, ms_ssim_scales, mse, psnr, ssim


def _smooth_images(b: int, h: int, w: int) -> torch.Tensor:
    """Natural-ish test images: blurred noise in [0, 1] (SSIM on white noise alone is degenerate)."""
    x = F.avg_pool2d(torch.rand(b, 3, h + 4, w + 4), 5, stride=1)
    return (x - x.amin()) / (x.amax() - x.amin())


def _noisy(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return (x + sigma * torch.randn_like(x)).clamp(0, 1)


def test_identical_images():
    x = _smooth_images(2, 64, 64)
    assert torch.equal(l1(x, x), torch.zeros(2))
    assert torch.isinf(psnr(x, x)).all() and (psnr(x, x) > 0).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2))


def test_known_values():
    x = torch.full((1, 3, 16, 16), 0.25)
    y = x + 0.1
    torch.testing.assert_close(l1(x, y), torch.tensor([0.1]))
    torch.testing.assert_close(mse(x, y), torch.tensor([0.01]))
    torch.testing.assert_close(psnr(x, y), torch.tensor([20.0]))  # 10 log10(1 / 0.01)


def test_psnr_of_gaussian_noise_is_close_to_analytic():
    sigma = 0.02
    x = 0.25 + 0.5 * torch.rand(4, 3, 64, 64)  # far from 0 and 1: no clipping at 12 sigma
    y = x + sigma * torch.randn_like(x)
    expected = 10 * math.log10(1 / sigma**2)  # 33.98 dB
    # MSE over 12288 values has ~1.3% relative spread, i.e. ~0.06 dB.
    assert (psnr(x, y) - expected).abs().max().item() < 0.25


@pytest.mark.parametrize("h,w", [(64, 64), (37, 53), (128, 96)])
def test_ssim_matches_scikit_image(h, w):
    x = _smooth_images(2, h, w)
    y = _noisy(x, 0.08)
    ours = ssim(x, y)
    for i in range(2):
        ref = structural_similarity(
            x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy(),
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1,
        )
        assert abs(ours[i].item() - ref) < 1e-4, (i, ours[i].item(), ref)
    assert 0.2 < ours.min() < ours.max() < 0.99  # a non-trivial value


def test_ms_ssim_scale_rule():
    assert ms_ssim_scales(64, 64) == 3  # 64, 32, 16
    assert ms_ssim_scales(128, 128) == 4
    assert ms_ssim_scales(256, 256) == 5
    assert ms_ssim_scales(512, 176) == 5  # capped at the 5 published weights
    assert ms_ssim_scales(21, 400) == 1
    with pytest.raises(ValueError, match="at least 11x11"):
        ms_ssim_scales(10, 64)
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="does not fit"):
        ms_ssim(x, x, scales=4)


def test_ms_ssim_one_scale_is_ssim():
    x = _smooth_images(2, 48, 48)
    y = _noisy(x, 0.05)
    torch.testing.assert_close(ms_ssim(x, y, scales=1), ssim(x, y))


def test_ms_ssim_in_unit_interval_and_decreasing_with_noise():
    x = _smooth_images(2, 64, 64)
    values = [ms_ssim(x, _noisy(x, s)) for s in (0.01, 0.05, 0.1, 0.3)]
    for v in values:
        assert ((v > 0) & (v <= 1)).all()
    for a, b in zip(values, values[1:]):
        assert (a > b).all()


def test_ms_ssim_matches_pytorch_msssim_when_installed():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    x = _smooth_images(2, 176, 181)  # odd width exercises the pooling pad
    y = _noisy(x, 0.08)
    ref = pytorch_msssim.ms_ssim(x.double(), y.double(), data_range=1.0, size_average=False)
    torch.testing.assert_close(ms_ssim(x, y).double(), ref, atol=1e-5, rtol=0)


def test_metrics_reject_bad_inputs():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, torch.rand(1, 3, 32, 31))
    with pytest.raises(ValueError, match="RGB"):
        ssim(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="float"):
        l1((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


def test_the_psnr_forms_agree():
    from imf.eval.metrics import psnr, psnr_of_mse, psnr_uint8

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 16, 16, generator=g)
    y = (x + 0.05 * torch.randn(3, 3, 16, 16, generator=g)).clamp(0, 1)
    per_image = psnr(x, y)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    assert torch.allclose(per_image.double(), torch.tensor([psnr_of_mse(float(m)) for m in mse], dtype=torch.float64), atol=1e-5)
    assert torch.isinf(psnr(x, x)).all() and torch.allclose(psnr(x, x, mse_floor=1e-10), torch.full((3,), 100.0))
    a = (x[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    b = (y[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    assert abs(psnr_uint8(a, b) - float(psnr(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255,
                                               torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255))) < 1e-3
    assert psnr_uint8(a, a) == float("inf")
