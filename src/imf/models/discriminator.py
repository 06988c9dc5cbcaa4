"""The two-scale spectral-norm patch discriminator used for training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from imf.config import IMFConfig


class PatchDiscriminator(nn.Module):
    """4×4 stride-2 spectral-norm convs (InstanceNorm on all but the first, LeakyReLU 0.2), then a 1×1
    spectral-norm conv to one logit per patch."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        prev = 3
        for i, ch in enumerate(channels):
            layers.append(spectral_norm(nn.Conv2d(prev, ch, 4, stride=2, padding=1)))
            if i > 0:
                layers.append(nn.InstanceNorm2d(ch, affine=False))
            layers.append(nn.LeakyReLU(0.2))
            prev = ch
        layers.append(spectral_norm(nn.Conv2d(prev, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # (B, 1, S/16, S/16) patch logits


class MultiScaleDiscriminator(nn.Module):
    """One PatchDiscriminator per scale: full resolution, ↓2, … (``discriminator_scales``)."""

    def __init__(self, config: IMFConfig):
        super().__init__()
        self.discs = nn.ModuleList(PatchDiscriminator(config.discriminator_channels)
                                   for _ in range(config.discriminator_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, S, S) in [0, 1] → list of patch logits, one per scale."""
        out = []
        for i, d in enumerate(self.discs):
            out.append(d(x if i == 0 else F.avg_pool2d(x, 2**i)))
        return out
