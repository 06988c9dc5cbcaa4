"""IMF, the whole generator (paper §3, Fig. 2):

    x̂_c = D_F( IMF_A( IMF_D(t_c), IMF_D(t_r), E_F(x_r) ) )      t_c = E_T(x_c), t_r = E_T(x_r)

Streaming use: ``prepare_reference(x_r)`` runs everything that depends only on the reference once
(E_F, E_T, IMF_D(t_r) and the attention keys/values with positional embeddings applied); then
``decode(t_c, ref)`` costs only IMF_D(t_c), the attention, the transformer blocks and D_F per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imf.config import IMFConfig
from imf.models.alignment import ImplicitMotionAlignment
from imf.models.feature_encoder import DenseFeatureEncoder
from imf.models.frame_decoder import FrameDecoder
from imf.models.token_decoder import LatentTokenDecoder
from imf.models.token_encoder import LatentTokenEncoder


@dataclass
class ReferenceState:
    """Every per-reference tensor, computed once by ``IMF.prepare_reference``.

    f_r: [f_r^1..f_r^4] (B, c_f, H, W); t_r: (B, d_m); m_r: [m_r^1..m_r^4] (B, c_m, H, W);
    keys_values: per scale (K (B, h, n, c_m/h) with P added, V (B, h, n, c_f/h)).
    """

    f_r: list[torch.Tensor]
    t_r: torch.Tensor
    m_r: list[torch.Tensor]
    keys_values: list[tuple[torch.Tensor, torch.Tensor]]

    @property
    def batch_size(self) -> int:
        return self.t_r.shape[0]

    def to(self, *args, **kwargs) -> "ReferenceState":
        return ReferenceState(
            f_r=[f.to(*args, **kwargs) for f in self.f_r], t_r=self.t_r.to(*args, **kwargs),
            m_r=[m.to(*args, **kwargs) for m in self.m_r],
            keys_values=[(k.to(*args, **kwargs), v.to(*args, **kwargs)) for k, v in self.keys_values])


class IMF(nn.Module):
    def __init__(self, config: IMFConfig):
        super().__init__()
        self.config = config
        self.token_encoder = LatentTokenEncoder(config)  # E_T
        self.feature_encoder = DenseFeatureEncoder(config)  # E_F
        self.token_decoder = LatentTokenDecoder(config)  # IMF_D
        self.motion_alignment = ImplicitMotionAlignment(config)  # IMF_A
        self.frame_decoder = FrameDecoder(config)  # D_F

    def _check_frames(self, x: torch.Tensor, name: str) -> None:
        s = self.config.resolution
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{name} must have shape (B, 3, {s}, {s}), got {tuple(x.shape)}")

    def encode_token(self, x: torch.Tensor) -> torch.Tensor:
        """E_T: frames (B, 3, S, S) in [0, 1] → tokens (B, d_m)."""
        self._check_frames(x, "x")
        return self.token_encoder(x)

    def prepare_reference(self, x_r: torch.Tensor) -> ReferenceState:
        """Everything that depends only on the reference frame(s) x_r (B, 3, S, S)."""
        self._check_frames(x_r, "x_r")
        f_r = self.feature_encoder(x_r)
        t_r = self.token_encoder(x_r)
        m_r = self.token_decoder(t_r)
        kv = self.motion_alignment.reference_keys_values(m_r, f_r)
        return ReferenceState(f_r=f_r, t_r=t_r, m_r=m_r, keys_values=kv)

    def decode(self, t_c: torch.Tensor, ref: ReferenceState) -> torch.Tensor:
        """Tokens t_c (B, d_m) + a prepared reference (batch B or 1) → frames x̂ (B, 3, S, S) in [0, 1]."""
        if t_c.ndim != 2 or t_c.shape[1] != self.config.d_m:
            raise ValueError(f"t_c must have shape (B, {self.config.d_m}), got {tuple(t_c.shape)}")
        if ref.batch_size not in (1, t_c.shape[0]):
            raise ValueError(f"reference batch {ref.batch_size} does not match token batch {t_c.shape[0]}")
        m_c = self.token_decoder(t_c)
        f_c = self.motion_alignment(m_c, ref.keys_values)
        return self.frame_decoder(f_c)

    def forward(self, x_c: torch.Tensor, x_r: torch.Tensor) -> torch.Tensor:
        """Reconstruct current frames x_c from references x_r, both (B, 3, S, S) in [0, 1]."""
        return self.decode(self.encode_token(x_c), self.prepare_reference(x_r))

    # ---- checkpoints -------------------------------------------------------------------------------
    def save_pretrained(self, path, dtype: torch.dtype | None = None) -> None:
        """Write ``path/config.json`` and ``path/model.safetensors`` (optionally cast, e.g. fp16)."""
        from imf.checkpoint import save_model

        save_model(self, path, dtype=dtype)

    @classmethod
    def from_pretrained(cls, path, map_location: str | torch.device = "cpu") -> "IMF":
        from imf.checkpoint import load_model

        return load_model(path, map_location=map_location)
