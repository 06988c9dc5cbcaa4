"""IMF_D, the latent token decoder (paper §3.2): token → motion features m^1..m^4.

A StyleGAN2 synthesis stack conditioned on the token: a learned constant at R/64, then 13 StyledConvs
(one at the constant's level, three per upsampled level, the first of each ↑2), with weight modulation
and demodulation by the token. m^4, m^3, m^2 are read out by side-branch StyledConvs at R/32, R/16, R/8
with the widths of f^4, f^3, f^2; m^1 is the last StyledConv's output at R/4.
"""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.modulated import StyledConv


class LatentTokenDecoder(nn.Module):
    def __init__(self, config: IMFConfig):
        super().__init__()
        c = config
        chans = c.token_decoder_channels  # per level: R/64, R/32, R/16, R/8, R/4
        self.const = nn.Parameter(torch.randn(1, chans[0], c.resolution // 64, c.resolution // 64))
        self.levels = nn.ModuleList()
        self.levels.append(nn.ModuleList([StyledConv(chans[0], chans[0], c.d_m)]))
        for prev, ch in zip(chans[:-1], chans[1:]):
            layers = [StyledConv(prev, ch, c.d_m, upsample=True)]
            layers += [StyledConv(ch, ch, c.d_m) for _ in range(c.token_decoder_layers_per_level - 1)]
            self.levels.append(nn.ModuleList(layers))
        # side branches for m^4 (level 1, R/32), m^3 (level 2, R/16), m^2 (level 3, R/8)
        motion = c.motion_channels  # m^1..m^4
        self.side = nn.ModuleList(StyledConv(chans[lvl], motion[4 - lvl], c.d_m) for lvl in (1, 2, 3))

    @property
    def num_styled_convs(self) -> int:
        return sum(len(level) for level in self.levels)

    def forward(self, t: torch.Tensor) -> list[torch.Tensor]:
        """t (B, d_m) → [m^1, m^2, m^3, m^4], finest first."""
        h = self.const.expand(t.shape[0], -1, -1, -1)
        side_out = []
        for i, level in enumerate(self.levels):
            for layer in level:
                h = layer(h, t)
            if 1 <= i <= 3:
                side_out.append(self.side[i - 1](h, t))  # m^4, m^3, m^2
        return [h] + side_out[::-1]
