"""The two-scale spectral-norm patch discriminator used for training (supplement §2 and Fig. 1(g))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from imf.config import IMFConfig


class PatchDiscriminator(nn.Module):
    """One scale of the patch discriminator (supplement §2, Fig. 1(g)): frame → one logit per patch.

    4×4 stride-2 spectral-norm convs (InstanceNorm on all but the first, LeakyReLU 0.2), then a 1×1
    spectral-norm conv to one logit per patch. Shapes at paper-256, full-resolution scale:

        x (B, 3, 256, 256) in [0, 1] ─► 2x − 1 ─► SN-Conv-64 4×4/2 + LReLU ─► (B, 64, 128, 128)
          ─► SN-Conv-128 4×4/2 + IN + LReLU ─► (B, 128, 64, 64) ─► SN-Conv-256 … ─► (B, 256, 32, 32)
          ─► SN-Conv-512 4×4/2 + IN + LReLU ─► (B, 512, 16, 16) ─► SN-Conv-1 1×1 ─► (B, 1, 16, 16)

    ``channels``: one 4×4 stride-2 conv per entry (``discriminator_channels``: 64, 128, 256, 512).
    """

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
    """The multi-scale discriminator (supplement §2, Fig. 1(g)): one PatchDiscriminator per scale.

        x (B, 3, 256, 256) ─► PatchDiscriminator 0 ─────────────────────────► (B, 1, 16, 16)
        x ─► avg-pool ↓2 ─► (B, 3, 128, 128) ─► PatchDiscriminator 1 ─► (B, 1, 8, 8)      (paper-256)

    Used for training only, with the hinge GAN loss. Config: ``discriminator_scales``: number of scales
    (full resolution, ↓2, …; scale i sees x average-pooled by 2^i; 2 in the paper); ``discriminator_channels``:
    the widths of every PatchDiscriminator, each with its own weights.
    """

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
