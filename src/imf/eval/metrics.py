"""Full-reference image metrics of the paper's Table 1: L1, PSNR, SSIM, MS-SSIM.

Conventions (all functions): ``x`` and ``y`` are float tensors (B, 3, H, W) of RGB in [0, 1]
(data range 1); each returns a per-image tensor (B,) in float32 (computed in float64 where
cancellation matters). No colour conversion (no Y channel): metrics are on RGB, averaged over channels.

- ``l1``: mean absolute error over all pixels and channels.
- ``psnr``: 10·log10(1 / MSE), MSE over all pixels and channels; identical images give +inf, or at most
  10·log10(1 / mse_floor) with a floor (training logs use 1e-10: 100 dB). ``psnr_of_mse`` is the same
  formula on an MSE already pooled (the PSNR of a whole clip's mean MSE, as a codec reports it),
  ``psnr_uint8`` on two 8-bit images (peak 255).
- ``ssim``: Wang et al. 2004 with an 11-tap Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03,
  population (not sample) covariances, computed per channel on the "valid" region (no padding: the
  window never leaves the image) and averaged over positions, then over the 3 channels. This equals
  scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1, channel_axis=-1)`` (which filters with reflection and then crops the 5-pixel border).
- ``ms_ssim``: Wang et al. 2003: at scales j = 1..M the contrast-structure term cs_j (and at the
  coarsest scale the full SSIM), combined as ∏ cs_j^β_j · ssim_M^β_M per channel, then averaged over
  channels. Between scales: 2×2 average pooling (an odd side is zero-padded by one at each end, as in pytorch-msssim).
  Negative cs/ssim terms are clamped to 0 before the power (as pytorch-msssim does) so that fractional
  exponents stay real. β = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) for M = 5.
  **Small images**: a scale is used only if its smaller side is at least the 11-pixel window, so
  M = min(5, 1 + floor(log2(min(H, W) / 11))): 256² → 5 scales, 128² → 4 (coarsest 16²),
  64² → 3 (coarsest 16²). With M < 5 the first M weights are kept and renormalised to sum 1 (with M = 5 the
  published weights are used as they are, summing to 1.0001, as every reference implementation does).
  MS-SSIM values at different resolutions are therefore not directly comparable; reports state M.

Hand-written rather than taken from pytorch-msssim (which installs cleanly beside our torch) because its
``ms_ssim`` asserts a smaller side > 160 pixels and so cannot score our 64² and 128² presets; its SSIM
is the same formula as here (our tests check against scikit-image).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check(x: Tensor, y: Tensor, name: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected (B, 3, H, W) RGB tensors, got {tuple(x.shape)}")
    if not (x.is_floating_point() and y.is_floating_point()):
        raise ValueError(f"{name}: expected float tensors in [0, 1], got {x.dtype} and {y.dtype}")


def l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error per image (B,), RGB in [0, 1]."""
    _check(x, y, "l1")
    return (x.double() - y.double()).abs().flatten(1).mean(1).float()


def mse(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error per image (B,), RGB in [0, 1]."""
    _check(x, y, "mse")
    return (x.double() - y.double()).pow(2).flatten(1).mean(1).float()


PSNR_MSE_FLOOR = 1e-10
"""The MSE floor of every reported per-frame PSNR (reports, training logs, RD): at most 100 dB, never inf."""


def psnr(x: Tensor, y: Tensor, mse_floor: float | None = None) -> Tensor:
    """PSNR in dB per image (B,): 10·log10(1 / MSE) on RGB in [0, 1]; +inf where the images are equal
    (mse_floor: the MSE is clamped to at least this)."""
    _check(x, y, "psnr")
    err = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    if mse_floor is not None:
        err = err.clamp_min(mse_floor)
    return (10 * torch.log10(1.0 / err)).float()  # 1/0 = inf -> +inf dB


def psnr_of_mse(mse: float, peak: float = 1.0) -> float:
    """10·log10(peak² / mse) in dB of a pooled MSE; +inf for mse 0."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (inf when equal)."""
    return psnr_of_mse(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)), 255.0)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(WINDOW, dtype=dtype, device=device) - WINDOW // 2
    g = torch.exp(-(coords**2) / (2 * SIGMA**2))
    return g / g.sum()  # (WINDOW,)


def _blur(x: Tensor, g: Tensor) -> Tensor:
    """Separable Gaussian filter, 'valid' region only: (B, C, H, W) -> (B, C, H-10, W-10)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, WINDOW), groups=c)  # along W
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, WINDOW, 1), groups=c)  # along H


def _moments(x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """Local mean and variance of x under the Gaussian window: (mu, var), each (B, C, H-10, W-10)."""
    mu = _blur(x, g)
    return mu, _blur(x * x, g) - mu**2


def _ssim_cs(x: Tensor, y: Tensor, x_moments: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Per-channel mean SSIM and mean contrast-structure term, each (B, C); inputs float64.
    x_moments: ``_moments(x, g)`` if already computed (the same numbers)."""
    if min(x.shape[-2:]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got {tuple(x.shape[-2:])}")
    g = _gaussian_window(x.dtype, x.device)
    c1, c2 = K1**2, K2**2  # data range 1
    mu_x, var_x = x_moments if x_moments is not None else _moments(x, g)
    mu_y, var_y = _moments(y, g)
    cov = _blur(x * y, g) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)  # (B, C) each


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """SSIM per image (B,): Gaussian window 11, σ 1.5, per RGB channel then averaged (see module doc)."""
    _check(x, y, "ssim")
    s, _ = _ssim_cs(x.double(), y.double())
    return s.mean(1).float()


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used for an image of this size (coarsest side ≥ the 11-pixel window)."""
    side = min(height, width)
    if side < WINDOW:
        raise ValueError(f"MS-SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got {height}x{width}")
    return min(len(MS_SSIM_WEIGHTS), 1 + int(math.floor(math.log2(side / WINDOW))))


def ms_ssim(x: Tensor, y: Tensor, scales: int | None = None) -> Tensor:
    """MS-SSIM per image (B,) with as many scales as fit (≤ 5), weights renormalised (see module doc).

    ``scales`` forces M (1..5); it must still fit the image.
    """
    _check(x, y, "ms_ssim")
    fit = ms_ssim_scales(x.shape[-2], x.shape[-1])
    m = fit if scales is None else scales
    if not 1 <= m <= fit:
        raise ValueError(f"ms_ssim: scales={scales} does not fit a {x.shape[-2]}x{x.shape[-1]} image (1..{fit})")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:m], dtype=torch.float64, device=x.device)
    if m < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()  # fewer scales: renormalise (the published 5 sum to 1.0001: kept as is)
    x, y = x.double(), y.double()
    terms = []
    for j in range(m):
        s, cs = _ssim_cs(x, y)
        if j < m - 1:
            terms.append(cs.clamp_min(0))
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)  # odd side: 1 zero each end, as pytorch-msssim
            x = F.avg_pool2d(x, 2, padding=pad)  # (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))
            y = F.avg_pool2d(y, 2, padding=pad)
    terms.append(s.clamp_min(0))
    stacked = torch.stack(terms)  # (M, B, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1).float()


def _half(x: Tensor) -> Tensor:
    """MS-SSIM's 2×2 average pooling between scales (an odd side zero-padded by one at each end)."""
    pad = (x.shape[-2] % 2, x.shape[-1] % 2)
    return F.avg_pool2d(x, 2, padding=pad)  # (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))


def ssim_reference(x: Tensor, scales: int = 1) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The reference image's side of SSIM / MS-SSIM for ``ssim_and_ms_ssim``, computed once for several distorted
    versions of it: per scale j < ``scales``, (x_j float64, local mean, local variance)."""
    out = []
    x = x.double()
    for j in range(scales):
        if j:
            x = _half(x)
        g = _gaussian_window(x.dtype, x.device)
        out.append((x, *_moments(x, g)))
    return out


def ssim_and_ms_ssim(x: Tensor, y: Tensor, reference: list[tuple[Tensor, Tensor, Tensor]] | None = None,
                     with_ms_ssim: bool = True) -> tuple[Tensor, Tensor | None]:
    """(``ssim(x, y)``, ``ms_ssim(x, y)`` or None) in one pass, equal to them bit for bit: SSIM is MS-SSIM's first
    scale, computed once, and the reference's side (``reference = ssim_reference(x, M)``, M = ``ms_ssim_scales``,
    or 1 without MS-SSIM) can be shared by several y. ``ssim`` and ``ms_ssim`` stay the plain reference paths."""
    _check(x, y, "ssim")
    m = ms_ssim_scales(x.shape[-2], x.shape[-1]) if with_ms_ssim else 1
    reference = reference if reference is not None else ssim_reference(x, m)
    if len(reference) < m or reference[0][0].shape != x.shape:
        raise ValueError(f"ssim_and_ms_ssim: the reference has {len(reference)} scales of "
                         f"{tuple(reference[0][0].shape)}, needs {m} of {tuple(x.shape)}")
    y = y.double()
    terms = []
    ssim_value = None
    for j in range(m):
        x_j, mu_x, var_x = reference[j]
        s, cs = _ssim_cs(x_j, y, (mu_x, var_x))
        if j == 0:
            ssim_value = s.mean(1).float()
        if j < m - 1:
            terms.append(cs.clamp_min(0))
            y = _half(y)
    if not with_ms_ssim:
        return ssim_value, None
    terms.append(s.clamp_min(0))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:m], dtype=torch.float64, device=x.device)
    if m < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()  # as in ms_ssim
    stacked = torch.stack(terms)  # (M, B, C)
    return ssim_value, torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1).float()
