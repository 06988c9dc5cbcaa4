"""Attention for IMF_A.

Dimension letters: b batch, n sequence (H·W of one scale), h heads, d per-head width, c channels.

Two paths computing the same function (tested against each other):
- SDPA: ``torch.nn.functional.scaled_dot_product_attention``; on fused kernels (flash / memory-efficient)
  the n×n score matrix is never materialised.
- explicit: softmax(q kᵀ / √d) v written out; kept as the readable reference.

SDPA's flash kernels (CPU, and CUDA's FlashAttention) run only when q, k and v have unit stride along
the head width and share one head width; otherwise CPU falls back to the math path, which materialises
the n×m score matrix (paper-256's cross-attention at scale 1: q/k 256 wide, v 128 wide, n = m = 4096, a
64 MiB matrix per sample). ``attention`` therefore makes the inputs unit-stride and zero-pads the
narrower side: zero columns of v give zero output columns (sliced off), and zero columns of q and k
leave q kᵀ unchanged (the softmax scale is passed explicitly as 1/√d of the unpadded width). The padding
costs 2·n·m·|d − e| extra FLOPs (4.3 GFLOP per paper-256 frame, 2 %), which the flop counter includes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, use_sdpa: bool = True) -> torch.Tensor:
    """q (b, h, n, d), k (b, h, m, d), v (b, h, m, e) → (b, h, n, e)."""
    if use_sdpa:
        return _fused_sdpa(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (b, h, n, m)
    return scores.softmax(dim=-1) @ v


def _fused_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA with its inputs shaped so that a fused kernel (not the math path) runs."""
    # The fused kernels need unit stride along the head width; (b, c, H, W) maps flattened and
    # transposed to (b, n, c) have stride n there (elementwise ops such as "+ P" keep that layout).
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    d, e = q.shape[-1], v.shape[-1]
    if d == e:
        return F.scaled_dot_product_attention(q, k, v)
    if e < d:
        v_pad = F.pad(v, (0, d - e))  # (b, h, m, d)
        return F.scaled_dot_product_attention(q, k, v_pad)[..., :e]
    q_pad, k_pad = F.pad(q, (0, e - d)), F.pad(k, (0, e - d))  # (b, h, n, e), (b, h, m, e)
    return F.scaled_dot_product_attention(q_pad, k_pad, v, scale=1.0 / math.sqrt(d))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(b, n, h·d) → (b, h, n, d)."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(b, h, n, d) → (b, n, h·d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and an output projection."""

    def __init__(self, dim: int, heads: int, use_sdpa: bool = True):
        super().__init__()
        self.heads, self.use_sdpa = heads, use_sdpa
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (b, n, c)
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # each (b, n, c)
        out = attention(split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads),
                        self.use_sdpa)
        return self.proj(merge_heads(out))


class TransformerBlock(nn.Module):
    """Supplement eq. 6, TransformerBlock(x) = FFN(MHSA(x)) with residuals: x + MHSA(x), then x + FFN(x),
    FFN(x) = GELU(LN(x) W1 + b1) W2 + b2. ``attention_norm`` adds a LayerNorm before the MHSA as well
    (the common pre-norm block; not in the paper's equation)."""

    def __init__(self, dim: int, heads: int, ffn_ratio: int = 4, use_sdpa: bool = True,
                 attention_norm: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim) if attention_norm else nn.Identity()
        self.attn = SelfAttention(dim, heads, use_sdpa)
        self.norm2 = nn.LayerNorm(dim)
        self.w1 = nn.Linear(dim, ffn_ratio * dim)
        self.w2 = nn.Linear(ffn_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (b, n, c)
        x = x + self.attn(self.norm1(x))
        return x + self.w2(F.gelu(self.w1(self.norm2(x))))


def set_sdpa(module: nn.Module, use_sdpa: bool) -> None:
    """Switch every attention under ``module`` between the SDPA and the explicit-softmax path."""
    for m in module.modules():
        if hasattr(m, "use_sdpa"):
            m.use_sdpa = use_sdpa
