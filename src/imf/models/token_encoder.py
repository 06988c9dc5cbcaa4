"""E_T, the latent token encoder (paper §3.1; supplement Fig. 1): frame → token t ∈ R^{d_m}."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.blocks import ResBlock
from imf.layers.equalized import ConvLayer, EqualConv2d, EqualLinear


class LatentTokenEncoder(nn.Module):
    """ConvLayer stem (1×1 by default); ResBlocks (each ↓2) down to 4×4; an EqualConv 4×4 (valid, no
    activation) squeezing the map to a vector; 4 EqualLinears (no activation by default, as the figure and
    LIA's encoder have them); a last EqualLinear to d_m. At paper-256: 64 → 64,128,256,512,512,512 → 512."""

    def __init__(self, config: IMFConfig):
        super().__init__()
        c = config
        layers: list[nn.Module] = [ConvLayer(3, c.token_encoder_stem, c.token_encoder_stem_kernel)]
        ch = c.token_encoder_stem
        for out in c.token_encoder_channels:
            layers.append(ResBlock(ch, out))
            ch = out
        self.convs = nn.Sequential(*layers)
        width = c.token_encoder_mlp_width
        self.squeeze = EqualConv2d(ch, width, 4, bias=False)
        self.mlp = nn.Sequential(*[EqualLinear(width, width, activation=c.token_encoder_mlp_activation)
                                   for _ in range(c.token_encoder_mlp_layers)])
        self.to_token = EqualLinear(width, c.d_m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) in [0, 1] → t (B, d_m)."""
        h = self.convs(x * 2 - 1)  # (B, C, 4, 4)
        h = self.squeeze(h).flatten(1)  # (B, C, 1, 1) → (B, C)
        return self.to_token(self.mlp(h))
