"""Coordinates, Gaussian keypoint heatmaps and flow warping for the explicit variants (paper §3.2, §3.5).

One convention everywhere: normalised coordinates (x, y) in [-1, 1] span the frame, and pixel j of a side
of n pixels has its centre at (2j + 1) / n − 1, which is ``F.grid_sample``'s ``align_corners=False``. So a
keypoint placed on a pixel centre peaks on that pixel at every scale, and a warp by an offset of 2s/n is a
shift by exactly s pixels.

Dimension letters: b batch, k keypoints, c channels, h, w height and width of the map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGN_CORNERS = False
"""The pixel-centre convention above, for every grid_sample of the variants."""


def pixel_centres(n: int, device=None, dtype=None) -> torch.Tensor:
    """(n,) normalised coordinates of the centres of n pixels: (2j + 1) / n − 1."""
    return (torch.arange(n, device=device, dtype=dtype or torch.float32) * 2 + 1) / n - 1


def identity_grid(h: int, w: int, device=None, dtype=None) -> torch.Tensor:
    """(1, h, w, 2) sampling grid of (x, y) pixel centres: grid_sample with it returns its input."""
    y = pixel_centres(h, device, dtype).view(h, 1).expand(h, w)
    x = pixel_centres(w, device, dtype).view(1, w).expand(h, w)
    return torch.stack([x, y], dim=-1).unsqueeze(0)


def gaussian_heatmaps(keypoints: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """keypoints (b, k, 2) as (x, y) in [-1, 1] → heatmaps (b, k, size, size), exp(−|p − kp|² / 2σ²), peak 1.

    sigma is in normalised coordinates (one pixel is 2 / size)."""
    grid = identity_grid(size, size, keypoints.device, keypoints.dtype)  # (1, size, size, 2)
    diff = grid.unsqueeze(1) - keypoints.view(-1, keypoints.shape[1], 1, 1, 2)  # (b, k, size, size, 2)
    return torch.exp(-diff.pow(2).sum(-1) / (2 * sigma ** 2))


def warp(f: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(p) = f(p + offset(p)), bilinear. f (b, c, h, w); offset (b, 2, h, w) as (dx, dy) in
    normalised coordinates. Outside the frame the border is repeated (zeros would paint a dark frame into
    the features wherever the head moves; the occlusion mask can still switch any pixel off)."""
    grid = identity_grid(f.shape[2], f.shape[3], f.device, f.dtype) + offset.permute(0, 2, 3, 1)  # (b, h, w, 2)
    return F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=ALIGN_CORNERS)
