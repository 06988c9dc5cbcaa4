"""IMF_D, the latent token decoder (paper §3.3; supplement Fig. 1(c)): token → motion features m^1..m^4."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.modulated import StyledConv


class LatentTokenDecoder(nn.Module):
    """IMF_D, the latent token decoder (paper §3.3, supplement Fig. 1(c)): t → motion features m^1..m^4.

    A StyleGAN2 synthesis stack conditioned on the token t, with weight modulation and demodulation (no
    noise): a learned constant at R/64, then a main path of StyledConvs over five levels R/64 … R/4, the
    first StyledConv of each upsampled level ↑2 (nearest). Three side-branch StyledConvs read m^4, m^3, m^2
    out of the main path after levels 1, 2, 3 (R/32, R/16, R/8); m^1 is the last main StyledConv's output
    at R/4. Paper-256: 1 + 2 + 2 + 2 + 3 = 10 main StyledConvs (512 wide, the last level 256) + 3 side
    (512 wide) = 13 in all; t (B, d_m=32) modulates every one:

        const (1, 512, 4, 4) ─► 1 StyledConv ─► (B, 512, 4, 4)
          ─► 2 StyledConvs, 1st ↑2 ─► (B, 512, 8, 8)   ─► side StyledConv ─► m^4 (B, 512, 8, 8)
          ─► 2 StyledConvs, 1st ↑2 ─► (B, 512, 16, 16) ─► side StyledConv ─► m^3 (B, 512, 16, 16)
          ─► 2 StyledConvs, 1st ↑2 ─► (B, 512, 32, 32) ─► side StyledConv ─► m^2 (B, 512, 32, 32)
          ─► 3 StyledConvs, 1st ↑2 ─► m^1 (B, 256, 64, 64)

    Config: ``token_decoder_channels[i]`` / ``token_decoder_layers[i]``: width and number of the main
    StyledConvs at level i (R/64, R/32, R/16, R/8, R/4); the last width is that of m^1.
    ``token_decoder_side_channels``: width of the side branches, so of m^2..m^4. ``d_m``: the style size.
    ``resolution``: the constant's side R/64.
    """

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
