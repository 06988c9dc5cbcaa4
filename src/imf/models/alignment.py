"""IMF_A, implicit motion alignment (paper §3.3; supplement Fig. 1(d), eqs. 5-6): m_c, m_r, f_r → f_c.

Dimension letters: b batch, n = H·W of the scale, c_m motion channels, c_f feature channels, h heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.attention import TransformerBlock, attention, merge_heads, split_heads


class ScaleAlignment(nn.Module):
    """IMF_A at one scale l (paper §3.3, supplement eqs. 5-6): m_c^l and the reference's K, V → f_c^l.

        m_r^l (b, c_m, H, W) ─► flatten ─► + P_k^l ─► K (b, h, n, c_m/h) ┐ ``keys_values``:
        f_r^l (b, c_f, H, W) ─► flatten ────────────► V (b, h, n, c_f/h) ┘ once per reference
        m_c^l (b, c_m, H, W) ─► flatten ─► + P_q^l ─► Q (b, h, n, c_m/h)
          ─► softmax(QKᵀ/√d_k)V ─► (b, n, c_f) ─► transformer blocks: x + MHSA(x), then x + FFN(x)
          ─► unflatten ─► f_c^l (b, c_f, H, W)
        paper-256, l = 1..4: n = 4096, 1024, 256, 64; c_m = 256, 512, 512, 512; c_f = 128, 256, 512, 512

    P_q, P_k are two learned positional embeddings ("P_q added to the queries and P_k to the keys"). The
    attention has no projections, so Q·K runs over c_m and the output keeps V's width c_f. The transformer
    blocks follow supplement eq. 6 (multi-head self-attention and FFN with residuals).

    Arguments: ``motion_ch`` c_m, ``feat_ch`` c_f and ``size`` H = W of this scale. Config:
    ``cross_attention_heads`` h (1 reproduces the paper's single softmax); ``pos_embed_init_std`` (std of
    the shared initial draw of P_q, P_k); ``transformer_blocks`` (4); ``transformer_head_dim`` (self-
    attention heads = c_f / head_dim, 2, 4, 8, 8 at paper-256); ``transformer_ffn_ratio`` (FFN hidden =
    ratio × c_f); ``transformer_attention_norm`` (LayerNorm before the MHSA, off by default); ``use_sdpa``.
    """

    def __init__(self, motion_ch: int, feat_ch: int, size: int, config: IMFConfig):
        super().__init__()
        self.size = size
        self.heads = config.cross_attention_heads
        self.use_sdpa = config.use_sdpa
        # learned P_q^l, P_k^l (1, n, c_m), both from one draw: at step 0 QKᵀ peaks on the diagonal, so the
        # attention of a frame with its own reference starts near an identity warp (config.pos_embed_init_std)
        pos = initial_positions(size, motion_ch, config.pos_embed_init_std, config.pos_embed_init_length)
        self.pos_q = nn.Parameter(pos.clone())
        self.pos_k = nn.Parameter(pos.clone())
        heads = feat_ch // config.transformer_head_dim
        self.blocks = nn.ModuleList(
            TransformerBlock(feat_ch, heads, config.transformer_ffn_ratio, config.use_sdpa,
                             attention_norm=config.transformer_attention_norm)
            for _ in range(config.transformer_blocks))

    def keys_values(self, m_r: torch.Tensor, f_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """m_r (b, c_m, H, W), f_r (b, c_f, H, W) → K (b, h, n, c_m/h), V (b, h, n, c_f/h)."""
        k = m_r.flatten(2).transpose(1, 2) + self.pos_k  # (b, n, c_m)
        v = f_r.flatten(2).transpose(1, 2)  # (b, n, c_f)
        # contiguous once here, so that SDPA's fused kernels need no per-frame copy of the cached K, V
        return split_heads(k.contiguous(), self.heads), split_heads(v.contiguous(), self.heads)

    def forward(self, m_c: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """m_c (b, c_m, H, W) and cached K, V → f_c (b, c_f, H, W)."""
        b, _, hgt, wid = m_c.shape
        q = split_heads((m_c.flatten(2).transpose(1, 2) + self.pos_q).contiguous(), self.heads)  # (b, h, n, c_m/h)
        if k.shape[0] != b:  # one reference shared by a batch of frames
            k, v = k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)
        x = merge_heads(attention(q, k, v, self.use_sdpa))  # (b, n, c_f)
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2).reshape(b, -1, hgt, wid)  # (b, c_f, H, W)


def initial_positions(size: int, channels: int, std: float, length: float = 0.0) -> torch.Tensor:
    """The initial draw of P_q, P_k: (1, size², channels), each entry of variance std².

    length 0: independent per position (a position's embedding is uncorrelated with its neighbours').
    length ℓ > 0: random Fourier features P(p) = std·√2·cos(W p + b), W ~ N(0, 1/ℓ²) per (axis, channel),
    b ~ U[0, 2π), p in grid cells, so that E[P(p)·P(p')] = channels·std²·exp(-|p - p'|² / 2ℓ²): a
    Gaussian kernel between positions (Rahimi & Recht's construction), smooth in p."""
    if length == 0:
        return torch.randn(1, size * size, channels) * std
    ij = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), -1)  # (s, s, 2)
    w = torch.randn(2, channels) / length
    b = torch.rand(channels) * 2 * math.pi
    return (math.sqrt(2) * std * torch.cos(ij.reshape(-1, 2).float() @ w + b)).unsqueeze(0)  # (1, s², c)


class PerScaleAlignment(nn.Module):
    """One ``scale_type`` module per scale (c_m, c_f, side from the config), the interface of IMF_A's slot:
    ``reference_keys_values`` once per reference, then ``forward`` per frame. Subclasses set ``scale_type``,
    whose modules have ``keys_values(m_r, f_r)`` and ``forward(m_c, *cached)``."""

    scale_type: type[nn.Module]

    def __init__(self, config: IMFConfig):
        super().__init__()
        self.scales = nn.ModuleList(
            self.scale_type(cm, cf, s, config)
            for cm, cf, s in zip(config.motion_channels, config.feature_channels, config.feature_sizes))

    def reference_keys_values(self, m_r: list[torch.Tensor], f_r: list[torch.Tensor]):
        """Per scale, everything that depends only on the reference (attention: K, V): computed once, reused
        every frame."""
        return [scale.keys_values(m, f) for scale, m, f in zip(self.scales, m_r, f_r)]

    def forward(self, m_c: list[torch.Tensor], cached: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        """[m_c^1..m_c^4] and the per-scale tuples of ``reference_keys_values`` → [f_c^1..f_c^4]."""
        return [scale(m, *c) for scale, m, c in zip(self.scales, m_c, cached)]


class ImplicitMotionAlignment(PerScaleAlignment):
    """IMF_A, implicit motion alignment (paper §3.3, supplement Fig. 1(d)): one ``ScaleAlignment`` per scale.

        m_r^1..m_r^4, f_r^1..f_r^4 ─► reference_keys_values ─► [(K, V)] per scale, once per reference
        m_c^1..m_c^4, [(K, V)]     ─► forward ─► [f_c^1..f_c^4], finest first, each shaped like f_r^l
        paper-256: f_c^l (B, 128, 64, 64), (B, 256, 32, 32), (B, 512, 16, 16), (B, 512, 8, 8)

    Config: ``motion_channels``, ``feature_channels`` and ``feature_sizes`` (derived from the IMF_D and E_F
    widths and ``resolution``) give each scale's c_m, c_f and side; the other IMF_A fields go to every
    ``ScaleAlignment``.
    """

    scale_type = ScaleAlignment
