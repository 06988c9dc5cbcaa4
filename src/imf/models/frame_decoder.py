"""D_F, the frame decoder (paper §3.1; supplement Fig. 1(e)): aligned features f_c^1..f_c^4 → frame in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.blocks import FeatResBlock, UpConvResBlock


class FrameDecoder(nn.Module):
    """D_F, the frame decoder (paper §3.1, Eq. 1; supplement Fig. 1(e)): f_c^1..f_c^4 → x̂_c in [0, 1].

    From f_c^4: UpConvResBlock ↑2, concat FeatResBlocks(f_c^3); UpConvResBlock ↑2, concat
    FeatResBlocks(f_c^2); UpConvResBlock ↑2, concat FeatResBlocks(f_c^1); two more UpConvResBlocks ↑2;
    Conv-3 k3 + Sigmoid. Each UpConvResBlock ends in two FeatResBlocks (Fig. 1(f)). Shapes at paper-256:

        f_c^4 (B, 512, 8, 8) ─► UpConvResBlock-512 ↑2 ─► concat 3 × FeatResBlock(f_c^3 (B, 512, 16, 16))
          ─► (B, 1024, 16, 16) ─► UpConvResBlock-512 ↑2 ─► concat 3 × FeatResBlock(f_c^2 (B, 256, 32, 32))
          ─► (B, 768, 32, 32) ─► UpConvResBlock-256 ↑2 ─► concat 3 × FeatResBlock(f_c^1 (B, 128, 64, 64))
          ─► (B, 384, 64, 64) ─► UpConvResBlock-128 ↑2 ─► (B, 128, 128, 128) ─► UpConvResBlock-64 ↑2
          ─► (B, 64, 256, 256) ─► Conv-3 k3 + Sigmoid ─► x̂_c (B, 3, 256, 256)

    Config: ``frame_decoder_channels``: widths of the five UpConvResBlocks. ``frame_decoder_block_resblocks``:
    FeatResBlocks that end each UpConvResBlock (paper: 2). ``frame_decoder_skip_blocks``: FeatResBlocks per
    skip branch (paper: 3; 5 × 2 + 3 × 3 = 19 FeatResBlocks in all). The skip widths are
    ``feature_channels``, those of f^1..f^4.
    """

    def __init__(self, config: IMFConfig):
        super().__init__()
        c = config
        fc = c.feature_channels  # f^1..f^4
        up = c.frame_decoder_channels
        # The supplement's figure labels the skip branches 512/512/256 wide, which disagrees with E_F's
        # f^3/f^2/f^1 (512/256/128 at paper-256); we follow the tensors: each skip keeps the width of its f_c^l.
        self.skips = nn.ModuleList(
            nn.Sequential(*[FeatResBlock(fc[l]) for _ in range(c.frame_decoder_skip_blocks)]) for l in (2, 1, 0))
        ins = [fc[3], up[0] + fc[2], up[1] + fc[1], up[2] + fc[0], up[3]]
        self.ups = nn.ModuleList(UpConvResBlock(i, o, c.frame_decoder_block_resblocks) for i, o in zip(ins, up))
        self.to_rgb = nn.Sequential(nn.Conv2d(up[4], 3, 3, padding=1), nn.Sigmoid())

    def forward(self, f_c: list[torch.Tensor]) -> torch.Tensor:
        """[f_c^1..f_c^4] → x̂ (B, 3, S, S) in [0, 1]."""
        h = f_c[3]
        for i, up in enumerate(self.ups):
            h = up(h)
            if i < 3:  # concat the skip of f_c^3, f_c^2, f_c^1 at the matching size
                h = torch.cat([h, self.skips[i](f_c[2 - i])], dim=1)
        return self.to_rgb(h)
