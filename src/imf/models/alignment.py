"""IMF_A, implicit motion alignment (paper §3.3).

Per scale l: flatten; cross-attention with Q = m_c^l + P_q^l, K = m_r^l + P_k^l, V = f_r^l (two learned
positional embeddings, "P_q added to the queries and P_k to the keys"), softmax(QKᵀ/√d_k)V; then
transformer blocks (supplement eq. 6: multi-head self-attention and FFN with residuals);
unflatten to f_c^l. Everything that depends only on the reference (K and V) is computed by
``reference_keys_values`` once and reused for every frame.

Dimension letters: b batch, n = H·W of the scale, c_m motion channels, c_f feature channels, h heads.
"""

from __future__ import annotations

import torch
from torch import nn

from imf.config import IMFConfig
from imf.layers.attention import TransformerBlock, attention, merge_heads, split_heads


class ScaleAlignment(nn.Module):
    """IMF_A at one scale."""

    def __init__(self, motion_ch: int, feat_ch: int, size: int, config: IMFConfig):
        super().__init__()
        self.size = size
        self.heads = config.cross_attention_heads
        self.use_sdpa = config.use_sdpa
        # learned P_q^l, P_k^l (1, n, c_m), both from one draw: at step 0 QKᵀ peaks on the diagonal, so the
        # attention of a frame with its own reference starts near an identity warp (config.pos_embed_init_std)
        pos = torch.randn(1, size * size, motion_ch) * config.pos_embed_init_std
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


class ImplicitMotionAlignment(nn.Module):
    def __init__(self, config: IMFConfig):
        super().__init__()
        self.scales = nn.ModuleList(
            ScaleAlignment(cm, cf, s, config)
            for cm, cf, s in zip(config.motion_channels, config.feature_channels, config.feature_sizes))

    def reference_keys_values(self, m_r: list[torch.Tensor], f_r: list[torch.Tensor]):
        return [scale.keys_values(m, f) for scale, m, f in zip(self.scales, m_r, f_r)]

    def forward(self, m_c: list[torch.Tensor], kv: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        return [scale(m, k, v) for scale, m, (k, v) in zip(self.scales, m_c, kv)]
