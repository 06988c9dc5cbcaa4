"""StyleGAN2 modulated convolution with weight demodulation (Karras et al. 2020, eq. 1–3), pure PyTorch.

The token t plays the role of StyleGAN2's style w: an EqualLinear maps it to a per-input-channel scale
s (B, C_in); weights w'_{ijk} = s_i · w_{ijk}; demodulation divides each output channel's weights by
sqrt(Σ_{i,k} w'^2 + ε), so every output channel of every sample has a unit-norm weight vector.

Two equivalent paths (tested against each other):
- ``fused=True``: one grouped convolution with per-sample weights (B·C_out, C_in, k, k).
- ``fused=False``: scale the activations by s, convolve with the shared weight, scale the outputs by the
  demodulation factor. Same result, no per-sample weight tensor.
- ``fused=None`` (the default): pick per call. The scaled-activation path wins on CPU unless a sample's
  weight tensor is smaller than its activations (see ``_prefer_grouped``); on CUDA the grouped conv is
  kept at batch 1 (StyleGAN2's choice) and the scaled path used above it.
Both paths compute the demodulation factor from the shared weight,
    d_{b,o} = rsqrt(Σ_i s_{b,i}² · Σ_k w_{o,i,k}² + ε)   (scale folded into s),
so neither needs a pass over a per-sample weight tensor to normalise it.
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
        self.fused: bool | None = None

    def _styles(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """s' = scale·s (B, C_in), and the demodulation factors (B, C_out) (None without demodulation)."""
        s = self.modulation(style) * self.scale  # (B, C_in), the equalized-lr scale folded in
        if not self.demodulate:
            return s, None
        w2 = self.weight[0].pow(2).sum(dim=(2, 3))  # (C_out, C_in): Σ_k w²
        return s, torch.rsqrt(s.pow(2) @ w2.t() + self.eps)  # (B, C_out)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, C_out, C_in, k, k), demodulated if enabled."""
        s, demod = self._styles(style)
        factor = s[:, None, :]  # (B, 1, C_in)
        if demod is not None:
            factor = factor * demod[:, :, None]  # (B, C_out, C_in)
        return self.weight * factor[..., None, None]  # one pass over the (B, C_out, C_in, k, k) tensor

    def _prefer_grouped(self, x: torch.Tensor) -> bool:
        if self.fused is not None:
            return self.fused
        b, _, h, w = x.shape
        if x.device.type == "cuda":
            return b == 1
        # CPU: the grouped path writes B per-sample weights, the scaled path scales B input and output maps
        out_hw = 4 * h * w if self.upsample else h * w
        return self.out_ch * self.in_ch * self.kernel_size**2 < (self.in_ch * h * w + self.out_ch * out_hw)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        pad = self.kernel_size // 2
        if self._prefer_grouped(x):
            if self.upsample:
                # StyleGAN2 uses a transposed conv + blur; nearest ↑2 then a 3×3 conv spans the same
                # function class and keeps the cost of the conv at the output resolution explicit.
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            b, c, h, w_ = x.shape
            weight = self.modulated_weight(style)  # (B, C_out, C_in, k, k)
            weight = weight.reshape(b * self.out_ch, c, self.kernel_size, self.kernel_size)
            out = F.conv2d(x.reshape(1, b * c, h, w_), weight, padding=pad, groups=b)  # (1, B·C_out, H, W)
            return out.reshape(b, self.out_ch, h, w_)
        s, demod = self._styles(style)
        x = x * s[:, :, None, None]  # before ↑2: nearest upsampling commutes with a per-channel scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        out = F.conv2d(x, self.weight[0], padding=pad)  # (B, C_out, H, W)
        if demod is not None:
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


def set_fused_modulation(module: nn.Module, fused: bool | None) -> None:
    """Switch every ModulatedConv2d under ``module`` to the grouped-conv (True) or the scaled-activation
    (False) path, or back to choosing per call (None, the default)."""
    for m in module.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = fused
