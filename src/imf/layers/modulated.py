"""StyleGAN2 modulated convolution with weight demodulation (Karras et al. 2020, eq. 1–3), pure PyTorch.

The token t plays the role of StyleGAN2's style w: an EqualLinear maps it to a per-input-channel scale
s (B, C_in); weights w'_{ijk} = s_i · w_{ijk}; demodulation divides each output channel's weights by
sqrt(Σ_{i,k} w'^2 + ε), so every output channel of every sample has a unit-norm weight vector.

Two equivalent paths (tested against each other):
- ``fused=True``: one grouped convolution with per-sample weights (B·C_out, C_in, k, k).
- ``fused=False``: scale the activations by s, convolve with the shared weight, scale the outputs by the
  demodulation factor. Same result, no per-sample weight tensor (cheaper at large batch on CPU).
No noise injection: the decoder must be deterministic for the codec (a decoded file is bit-exact with
the encoder's own reconstruction).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imf.layers.equalized import EqualLinear, fused_leaky_relu


class ModulatedConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, eps: float = 1e-8):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.fused = True

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, C_out, C_in, k, k), demodulated if enabled."""
        s = self.modulation(style)  # (B, C_in)
        w = self.scale * self.weight * s[:, None, :, None, None]  # (B, C_out, C_in, k, k)
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        return w

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            # StyleGAN2 uses a transposed conv + blur; nearest ↑2 then a 3×3 conv spans the same
            # function class and keeps the cost of the conv at the output resolution explicit.
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        b, c, h, w_ = x.shape
        pad = self.kernel_size // 2
        if self.fused:
            weight = self.modulated_weight(style)  # (B, C_out, C_in, k, k)
            weight = weight.reshape(b * self.out_ch, c, self.kernel_size, self.kernel_size)
            out = F.conv2d(x.reshape(1, b * c, h, w_), weight, padding=pad, groups=b)  # (1, B·C_out, H, W)
            return out.reshape(b, self.out_ch, h, w_)
        s = self.modulation(style)  # (B, C_in)
        out = F.conv2d(x * s[:, :, None, None], self.weight[0] * self.scale, padding=pad)
        if self.demodulate:
            # Σ_{i,k} (scale·w_{oik}·s_i)² = Σ_i s_i² · (scale² Σ_k w_{oik}²)
            w2 = (self.scale * self.weight[0]).pow(2).sum(dim=(2, 3))  # (C_out, C_in)
            demod = torch.rsqrt(s.pow(2) @ w2.t() + self.eps)  # (B, C_out)
            out = out * demod[:, :, None, None]
        return out


class StyledConv(nn.Module):
    """ModulatedConv2d → bias + leaky ReLU (the StyleGAN2 synthesis layer, without noise)."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, kernel_size: int = 3, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(self.conv(x, style), self.bias)


def set_fused_modulation(module: nn.Module, fused: bool) -> None:
    """Switch every ModulatedConv2d under ``module`` between the grouped-conv and the scaled-activation path."""
    for m in module.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = fused
