"""StyleGAN2-style equalized learning-rate layers (Karras et al.), pure PyTorch.

Weights are stored at unit variance and scaled by 1/sqrt(fan_in) at run time, so Adam's per-parameter
step sizes act equally on every layer whatever its fan-in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, slope: float = 0.2,
                     gain: float = math.sqrt(2.0)) -> torch.Tensor:
    """bias + leaky ReLU, times √2 to keep unit variance (StyleGAN2's FusedLeakyReLU, no CUDA kernel)."""
    if bias is not None:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        x = x + bias.view(shape)
    return F.leaky_relu(x, slope) * gain


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConvLayer(nn.Sequential):
    """E_T's ConvLayer: [↓2 average pool] → EqualConv k×k → (bias + leaky ReLU).

    StyleGAN2 blurs then convolves with stride 2; we average-pool first (an anti-aliased ↓2 too, and
    the conv then runs on a quarter of the pixels)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, downsample: bool = False,
                 activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            layers.append(nn.AvgPool2d(2))
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)
