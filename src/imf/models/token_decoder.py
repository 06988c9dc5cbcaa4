"""IMF_D, the latent token decoder (paper §3.2; supplement Fig. 1(c)): token → motion features m^1..m^4.

A StyleGAN2 synthesis stack conditioned on the token, with weight modulation and demodulation: a learned
constant at R/64, then a main path of StyledConvs, ``token_decoder_layers[i]`` at level i (R/64, R/32,
R/16, R/8, R/4), the first of each upsampled level ↑2 (paper-256: 1 + 2 + 2 + 2 + 3 = 10, 512 wide, the
last level 256). Three side-branch StyledConvs (paper: 512 wide) read m^4, m^3, m^2 out of the main path
after levels 1, 2, 3 (R/32, R/16, R/8); m^1 is the last main StyledConv's output at R/4. 13 in all.
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
        prev = chans[0]
        for i, (ch, n) in enumerate(zip(chans, c.token_decoder_layers)):
            layers = [StyledConv(prev, ch, c.d_m, upsample=i > 0)]
            layers += [StyledConv(ch, ch, c.d_m) for _ in range(n - 1)]
            self.levels.append(nn.ModuleList(layers))
            prev = ch
        # side branches for m^4 (after level 1, R/32), m^3 (level 2, R/16), m^2 (level 3, R/8)
        self.side = nn.ModuleList(StyledConv(chans[lvl], c.token_decoder_side_channels, c.d_m) for lvl in (1, 2, 3))

    @property
    def num_styled_convs(self) -> int:
        """Main path plus side branches (paper: 10 + 3)."""
        return sum(len(level) for level in self.levels) + len(self.side)

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
