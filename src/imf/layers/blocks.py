"""Residual blocks of E_T, E_F and D_F (supplement Fig. 1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imf.layers.equalized import ConvLayer


class ResBlock(nn.Module):
    """E_T's ResBlock-d (Fig. 1(f)): ConvLayer-d, ConvLayer-d ↓2, plus a ConvLayer-d ↓2 skip (1×1 without
    activation, as in StyleGAN2: the figure does not give its kernel), summed and scaled by 1/√2."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, out_ch, 3)
        self.conv2 = ConvLayer(out_ch, out_ch, 3, downsample=True)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


class FeatResBlock(nn.Module):
    """FeatResBlock-d: (BN, ReLU, 3×3 conv) twice, add the input, ReLU."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(ch), nn.ReLU(inplace=False), nn.Conv2d(ch, ch, 3, padding=1),
            nn.BatchNorm2d(ch), nn.ReLU(inplace=False), nn.Conv2d(ch, ch, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class DownConvResBlock(nn.Module):
    """DownConvResBlock-d: Conv-d k3 + BN + ReLU + AvgPool ↓2, Conv-d k3, 2 × FeatResBlock-d."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=False),
            nn.AvgPool2d(2),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            FeatResBlock(out_ch), FeatResBlock(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpConvResBlock(nn.Module):
    """UpConvResBlock-d (supplement Fig. 1(f)), the mirror of DownConvResBlock: Upsample ↑2, Conv-d k3 + BN
    + ReLU; Conv-d k3; ``resblocks`` (paper: 2) × FeatResBlock-d. The figure does not name the upsampling
    filter: bilinear here (smoother than nearest for a decoder that ends in a 3×3 conv)."""

    def __init__(self, in_ch: int, out_ch: int, resblocks: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=False),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            *[FeatResBlock(out_ch) for _ in range(resblocks)],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
