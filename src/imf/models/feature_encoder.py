"""E_F, the dense feature encoder (paper §3.1): reference frame → multiscale features f^1..f^4."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.blocks import DownConvResBlock


class DenseFeatureEncoder(nn.Module):
    """Conv k7 + BN + ReLU, then five DownConvResBlocks (each ↓2). The outputs of the last four are
    f^1..f^4 (paper-256: 128×64², 256×32², 512×16², 512×8²)."""

    def __init__(self, config: IMFConfig):
        super().__init__()
        c = config
        self.stem = nn.Sequential(nn.Conv2d(3, c.feature_encoder_stem, 7, padding=3),
                                  nn.BatchNorm2d(c.feature_encoder_stem), nn.ReLU(inplace=False))
        chans = (c.feature_encoder_stem,) + c.feature_encoder_channels
        self.blocks = nn.ModuleList(DownConvResBlock(i, o) for i, o in zip(chans[:-1], chans[1:]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, S, S) in [0, 1] → [f^1, f^2, f^3, f^4], finest first."""
        h = self.stem(x * 2 - 1)
        feats = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i > 0:
                feats.append(h)
        return feats
