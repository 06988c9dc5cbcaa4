"""E_T, the latent token encoder (paper §3.2; supplement Fig. 1(a)): frame → token t ∈ R^{d_m}."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.blocks import ResBlock
from imf.layers.equalized import ConvLayer, EqualConv2d, EqualLinear


class LatentTokenEncoder(nn.Module):
    """E_T, the latent token encoder (paper §3.2, supplement Fig. 1(a)): frame → token t ∈ R^{d_m}.

    Shapes at paper-256 (channels 64 → 64, 128, 256, 512, 512, 512 → 512):

        x (B, 3, 256, 256) in [0, 1] ─► 2x − 1 ─► ConvLayer stem (1×1) ─► (B, 64, 256, 256)
          ─► 6 ResBlocks, each ↓2 ─► (B, 512, 4, 4)
          ─► EqualConv 4×4, valid, no activation ("squeeze") ─► (B, 512, 1, 1) ─► flatten ─► (B, 512)
          ─► 4 × EqualLinear-512 (no activation by default) ─► EqualLinear ─► t (B, d_m=32)

    Config: ``token_encoder_stem`` / ``token_encoder_stem_kernel``: width and kernel (1×1 by default) of the
    ConvLayer stem. ``token_encoder_channels``: one ResBlock (↓2) per entry, as many as it takes to reach
    4×4. ``token_encoder_mlp_width``: width of the squeeze and of the MLP; ``token_encoder_mlp_layers``:
    EqualLinears before the last one (4); ``token_encoder_mlp_activation``: leaky ReLU after each (off by
    default, as the figure and LIA's encoder have them). ``d_m``: the token size of the last EqualLinear.
    ``token_kind``: "keypoints" ends in a tanh, so that t (B, 2K) is K (x, y) coordinates in (-1, 1)
    (paper §3.2: with d = K × 2 the tokens are FOMM's explicit coordinates).
    """

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
        self.squeeze = EqualConv2d(ch, width, 4, bias=False)  # the figure's EqualConv + Squeeze: 4×4 valid on 4×4
        self.mlp = nn.Sequential(*[EqualLinear(width, width, activation=c.token_encoder_mlp_activation)
                                   for _ in range(c.token_encoder_mlp_layers)])
        self.to_token = EqualLinear(width, c.d_m)
        # Keypoints as tanh of the MLP's output rather than a soft-argmax over heatmaps: E_T stays the paper's
        # network layer for layer (the paper's own reading of d = K × 2, §3.2), so the ablation changes the
        # representation, not the encoder; a soft-argmax would need a spatial heatmap head (FOMM's hourglass),
        # and E_T's last spatial map is 4×4, too coarse to place a keypoint.
        self.keypoints = c.token_kind == "keypoints"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) in [0, 1] → t (B, d_m)."""
        h = self.convs(x * 2 - 1)  # (B, C, 4, 4)
        h = self.squeeze(h).flatten(1)  # (B, C, 1, 1) → (B, C)
        t = self.to_token(self.mlp(h))  # (B, d_m)
        return torch.tanh(t) if self.keypoints else t  # keypoints: (B, 2K), (x, y) pairs in (-1, 1)
