"""Uniform scalar quantization of latent tokens, one step per dimension.

Conventions: a token t is (B, d_m) float. Dimension j is quantized with step
``step_j = spread_j * step_scale(quality)`` around ``center_j`` (both measured on training tokens):
``q = round((t - center) / step)``, an int64 symbol clipped to +-MAX_SYMBOL; the decoder's token is
``center + q * step`` in float32. ``quality`` is an integer; each +1 divides every step by sqrt(2)
(quality 4 is a step of one spread, quality 10 an eighth of it). The per-quality steps are stored as
float32 with the entropy tables, so encoder and decoder dequantize from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imf.codec.entropy import MAX_SYMBOL
from imf.errors import ConfigError

QUALITY_MIN = 1
QUALITY_MAX = 12
DEFAULT_QUALITIES = tuple(range(1, 11))
DEFAULT_QUALITY = 6


def step_scale(quality: int) -> float:
    """Step of one dimension in units of its spread: 2 ** ((4 - quality) / 2)."""
    if not isinstance(quality, (int, np.integer)) or not QUALITY_MIN <= quality <= QUALITY_MAX:
        raise ConfigError(f"quality must be an integer in [{QUALITY_MIN}, {QUALITY_MAX}], got {quality!r}")
    return 2.0 ** ((4 - int(quality)) / 2)


@dataclass(frozen=True)
class TokenQuantizer:
    """center, step: (d,) float32 arrays; see the module docstring."""

    center: np.ndarray
    step: np.ndarray

    def __post_init__(self) -> None:
        center = np.ascontiguousarray(self.center, dtype=np.float32).reshape(-1)
        step = np.ascontiguousarray(self.step, dtype=np.float32).reshape(-1)
        if center.shape != step.shape or not (step > 0).all() or not np.isfinite(center).all():
            raise ValueError("TokenQuantizer needs finite centers and positive steps of the same length")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "step", step)

    @classmethod
    def from_spread(cls, center: np.ndarray, spread: np.ndarray, quality: int) -> "TokenQuantizer":
        step = np.asarray(spread, dtype=np.float64) * step_scale(quality)
        return cls(center, step.astype(np.float32))

    @property
    def dim(self) -> int:
        return self.center.shape[0]

    def quantize(self, tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        """(B, d) float tokens -> (B, d) int64 symbols."""
        t = tokens.detach().float().cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens, np.float32)
        t = t.reshape(-1, self.dim)  # (B, d)
        q = np.rint((t - self.center) / self.step)
        return np.clip(np.nan_to_num(q), -MAX_SYMBOL, MAX_SYMBOL).astype(np.int64)

    def dequantize(self, symbols: np.ndarray, *, device: torch.device | str = "cpu") -> torch.Tensor:
        """(B, d) int symbols -> (B, d) float32 tokens on device (decoder side)."""
        q = np.asarray(symbols, dtype=np.int64).reshape(-1, self.dim)  # (B, d)
        t = torch.from_numpy(q.astype(np.float32)) * torch.from_numpy(self.step) + torch.from_numpy(self.center)
        return t.to(device)
