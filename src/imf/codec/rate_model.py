"""The codec's differentiable rate model: a learned per-dimension discretized Laplace over normalised tokens,
the stand-in for the integer entropy tables while E_T is fine-tuned for rate (``imf.train.rate``), and
``refit_tables``: the codec's tables refitted for a fine-tuned E_T with the quantizer kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from imf.codec.fit import Source, collect_tokens, fit_tables
from imf.codec.tables import CodecTables

_MIN_SCALE = 1e-3  # lower bound of the Laplace scale, in quantization steps


# ------------------------------------------------------------------------------------ rate model
def laplace_bin_log2p(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log2 of the probability mass of the unit bin [z - 1/2, z + 1/2] under Laplace(loc, scale).

    z (..., d); loc, scale (d,) broadcast. Closed form in log space, so the far tails never underflow
    (hand-written: no installed library has a discretized Laplace; CompressAI is not a dependency):
      |z - loc| >= 1/2:  P = 1/2 exp(-(|z - loc| - 1/2)/b) (1 - exp(-1/b))
      |z - loc| <  1/2:  P = 1 - exp(-1/(2b)) cosh(|z - loc|/b) = -(expm1(-(1/2 - d)/b) + expm1(-(1/2 + d)/b))/2
    """
    d = (z - loc).abs()
    d_far = d.clamp_min(0.5)
    log_far = math.log(0.5) - (d_far - 0.5) / scale + torch.log(-torch.expm1(-1.0 / scale))
    d_near = d.clamp_max(0.5)
    p_near = -0.5 * (torch.expm1(-(0.5 - d_near) / scale) + torch.expm1(-(0.5 + d_near) / scale))
    log_near = torch.log(p_near.clamp_min(1e-30))
    return torch.where(d >= 0.5, log_far, log_near) / math.log(2.0)


class LaplaceRateModel(nn.Module):
    """Learned per-dimension discretized Laplace over normalised tokens z (units of quantization steps).

    loc, log_scale: (d,) parameters. ``bits(z)`` -> (B,) code length per frame of z (B, d).
    """

    def __init__(self, dim: int, init_scale: float = 1.0):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.full((dim,), math.log(max(init_scale, _MIN_SCALE))))

    def scale(self) -> Tensor:
        return self.log_scale.exp().clamp_min(_MIN_SCALE)

    def bits(self, z: Tensor, detach_params: bool = False) -> Tensor:
        """-Σ_j log2 P_j(bin of z_j): (B, d) -> (B,). detach_params: no gradient to loc/scale."""
        loc, scale = self.loc, self.scale()
        if detach_params:
            loc, scale = loc.detach(), scale.detach()
        return -laplace_bin_log2p(z, loc, scale).sum(dim=-1)


# ------------------------------------------------------------------------------------ tables
def refit_tables(model, sources: Sequence[Source], base: CodecTables, *, qualities: Sequence[int] | None = None,
                 fraction: tuple[float, float] = (0.0, 1.0), batch_size: int = 16, progress: bool = True,
                 info: dict | None = None) -> CodecTables:
    """Entropy tables of ``model``'s tokens on ``sources`` with ``base``'s quantizer (center and spread) kept.

    Like :func:`imf.codec.fit.fit_tables` (same static/temporal tables and measured bits per frame)
    except that center and spread are not re-measured. qualities: default those of ``base``.
    """
    from imf.checkpoint import model_hash

    qualities = sorted(set(int(q) for q in (qualities or base.qualities)))
    tokens = collect_tokens(model, sources, fraction=fraction, batch_size=batch_size, progress=progress)
    names = [Path(s).name if not isinstance(s, np.ndarray) else f"array{tuple(s.shape)}" for s in sources]
    meta = {"sources": names, "fraction": list(fraction),
            "quantizer": "kept from tables fitted for model " + (base.model_hash[:16] or "(unknown)")}
    meta.update(info or {})
    return fit_tables(tokens, qualities=qualities, model_hash=model_hash(model), info=meta,
                      quantizer=(base.center, base.spread))
