"""E_F, the dense feature encoder (paper §3.2; supplement Fig. 1(b)): reference frame → features f^1..f^4."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.blocks import DownConvResBlock


class DenseFeatureEncoder(nn.Module):
    """E_F, the dense feature encoder (paper §3.2, supplement Fig. 1(b)): x_r → multiscale features f^1..f^4.

    Conv k7 + BN + ReLU, then five DownConvResBlocks (each ↓2); the outputs of the last four are f^1..f^4.
    It runs on the reference only. Shapes at paper-256:

        x_r (B, 3, 256, 256) in [0, 1] ─► 2x − 1 ─► Conv-64 k7 + BN + ReLU ─► (B, 64, 256, 256)
          ─► DownConvResBlock-64 ↓2  ─► (B, 64, 128, 128)
          ─► DownConvResBlock-128 ↓2 ─► f^1 (B, 128, 64, 64)
          ─► DownConvResBlock-256 ↓2 ─► f^2 (B, 256, 32, 32)
          ─► DownConvResBlock-512 ↓2 ─► f^3 (B, 512, 16, 16)
          ─► DownConvResBlock-512 ↓2 ─► f^4 (B, 512, 8, 8)

    Config: ``feature_encoder_stem``: width of the k7 stem. ``feature_encoder_channels``: the five
    DownConvResBlock widths; the last four are the widths c_f of f^1..f^4 (``config.feature_channels``).
    """

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
            if i > 0:  # the first block's output (R/2) is no scale of IMF_A; f^1..f^4 are R/4..R/32
                feats.append(h)
        return feats
