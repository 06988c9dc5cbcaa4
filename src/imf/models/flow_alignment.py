"""The explicit-alignment variant of IMF_A (paper §3.5): a dense flow and an occlusion mask per scale.

Dimension letters: b batch, c_m motion channels, c_f feature channels, H = W the side of the scale.
"""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.geometry import warp
from imf.models.alignment import PerScaleAlignment


class FlowScaleAlignment(nn.Module):
    """Explicit alignment at one scale l (``alignment_kind: flow``), in place of cross-attention + transformer:

        m_r^l (b, c_m, H, W) ─► conv_r (3×3, + bias) ─► r (b, c_m, H, W) ┐ ``keys_values``:
        f_r^l (b, c_f, H, W) ────────────────────────────────────────────┘ once per reference
        m_c^l (b, c_m, H, W) ─► conv_c (3×3) ─► + r ─► ReLU ─► (flow_layers − 1) × [3×3 conv, ReLU]
          ─► 3×3 conv ─► 3 channels: offset = flow_max_offset · tanh(ch 0, 1) (b, 2, H, W) as (dx, dy),
                                     mask = sigmoid(ch 2) (b, 1, H, W)
          ─► f_c^l = warp(f_r^l, offset) · mask: bilinear grid_sample of f_r at identity grid + offset
        (b, c_f, H, W)

    conv_c(m_c) + conv_r(m_r) is one 3×3 conv over the concatenation (m_c, m_r), split so that the reference's
    half is computed once per reference, like the attention's keys. The output conv starts small (weights
    × 0.1): the flow starts near the identity warp, as the attention's positional-embedding prior does.

    Arguments: ``motion_ch`` c_m, ``feat_ch`` c_f, ``size`` H (unused: any size works). Config:
    ``flow_layers``, ``flow_max_offset``.
    """

    def __init__(self, motion_ch: int, feat_ch: int, size: int, config: IMFConfig):
        super().__init__()
        hidden = motion_ch
        self.max_offset = config.flow_max_offset
        self.conv_c = nn.Conv2d(motion_ch, hidden, 3, padding=1, bias=False)
        self.conv_r = nn.Conv2d(motion_ch, hidden, 3, padding=1)
        body: list[nn.Module] = [nn.ReLU()]
        for _ in range(config.flow_layers - 1):
            body += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*body)
        self.head = nn.Conv2d(hidden, 3, 3, padding=1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def keys_values(self, m_r: torch.Tensor, f_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """m_r (b, c_m, H, W), f_r (b, c_f, H, W) → (r = conv_r(m_r) (b, c_m, H, W), f_r): the per-reference part."""
        return self.conv_r(m_r).contiguous(), f_r.contiguous()

    def flow_and_mask(self, m_c: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """m_c (b, c_m, H, W) and the cached r → offset (b, 2, H, W) in normalised units, mask (b, 1, H, W)."""
        out = self.head(self.body(self.conv_c(m_c) + r))  # (b, 3, H, W); r of batch 1 broadcasts
        return self.max_offset * torch.tanh(out[:, :2]), torch.sigmoid(out[:, 2:])

    def forward(self, m_c: torch.Tensor, r: torch.Tensor, f_r: torch.Tensor) -> torch.Tensor:
        """m_c (b, c_m, H, W) and the cached (r, f_r) → f_c (b, c_f, H, W)."""
        offset, mask = self.flow_and_mask(m_c, r)
        if f_r.shape[0] != m_c.shape[0]:  # one reference shared by a batch of frames
            f_r = f_r.expand(m_c.shape[0], -1, -1, -1)
        return warp(f_r, offset) * mask


class FlowMotionAlignment(PerScaleAlignment):
    """IMF_A for ``alignment_kind: flow``: one ``FlowScaleAlignment`` per scale, with the interface of
    ``ImplicitMotionAlignment`` (``reference_keys_values`` once per reference, then ``forward`` per frame).

        m_r^1..m_r^4, f_r^1..f_r^4 ─► reference_keys_values ─► [(r, f_r)] per scale
        m_c^1..m_c^4, [(r, f_r)]   ─► forward ─► [f_c^1..f_c^4], finest first, each shaped like f_r^l

    Config: ``motion_channels``, ``feature_channels``, ``feature_sizes``; ``flow_layers``, ``flow_max_offset``.
    """

    scale_type = FlowScaleAlignment
