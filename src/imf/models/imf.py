"""IMF, the whole generator (paper §3.1, Eq. 1; Fig. 3), and ReferenceState, its per-reference tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imf.config import IMFConfig
from imf.models.alignment import ImplicitMotionAlignment
from imf.models.feature_encoder import DenseFeatureEncoder
from imf.models.flow_alignment import FlowMotionAlignment
from imf.models.frame_decoder import FrameDecoder
from imf.models.keypoint_decoder import KeypointMotionDecoder
from imf.models.token_decoder import LatentTokenDecoder
from imf.models.token_encoder import LatentTokenEncoder


@dataclass
class ReferenceState:
    """Every per-reference tensor, computed once by ``IMF.prepare_reference`` and reused for every frame.

        x_r ─► E_F ─► f_r: [f_r^1..f_r^4] (B, c_f, H, W)
        x_r ─► E_T ─► t_r: (B, d_m) ─► IMF_D ─► m_r: [m_r^1..m_r^4] (B, c_m, H, W)
        m_r, f_r ─► IMF_A.reference_keys_values ─► keys_values: per scale
                    (K (B, h, n, c_m/h) with P_k added, V (B, h, n, c_f/h)), split into heads, contiguous

    At paper-256: f_r^l 128×64², 256×32², 512×16², 512×8²; m_r^l 256×64², 512×32², 512×16², 512×8²; h = 1.
    With ``alignment_kind: flow`` each entry of keys_values is instead (the m_r half of the flow net's first
    conv (B, c_m, H, W), f_r^l (B, c_f, H, W)) (``FlowScaleAlignment.keys_values``).
    A state of batch 1 can serve a batch of tokens in ``IMF.decode``. ``to`` moves or casts every tensor.
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
    """IMF, the whole generator (paper §3.1, Eq. 1, Fig. 3): E_T, E_F, IMF_D, IMF_A and D_F.

        x̂_c = D_F( IMF_A( IMF_D(t_c), IMF_D(t_r), E_F(x_r) ) )      t_c = E_T(x_c), t_r = E_T(x_r)

    The paper's IMF(t_c, t_r, f_r) (§3.3) is IMF_D followed by IMF_A; this class is the whole generator.
    Shapes at paper-256:

        x_r (B, 3, 256, 256) ─► prepare_reference ─► ReferenceState: f_r = E_F(x_r), t_r = E_T(x_r),
                                                      m_r = IMF_D(t_r), per scale K = m_r^l + P_k^l, V = f_r^l
        x_c (B, 3, 256, 256) ─► encode_token (E_T) ─► t_c (B, d_m=32), all the codec sends per frame
        t_c, ReferenceState ─► decode: IMF_D ─► m_c^1..m_c^4 ─► IMF_A (Q = m_c^l + P_q^l; K, V)
          ─► f_c^1..f_c^4 (128×64², 256×32², 512×16², 512×8²) ─► D_F ─► x̂_c (B, 3, 256, 256) in [0, 1]

    Streaming use: ``prepare_reference(x_r)`` runs everything that depends only on the reference once
    (E_F, E_T, IMF_D(t_r) and the attention keys/values with positional embeddings applied); then
    ``decode(t_c, ref)`` costs only IMF_D(t_c), the attention, the transformer blocks and D_F per frame.
    ``forward(x_c, x_r)`` is ``decode(encode_token(x_c), prepare_reference(x_r))``, so both paths give the
    same result.

    Variants (paper §3.2, §3.5, Table 3; the defaults are the paper's IMF): ``token_kind: keypoints`` makes
    t_c K (x, y) keypoints (d_m = 2K) and replaces IMF_D by Gaussian heatmaps + 1×1 projections
    (``KeypointMotionDecoder``); ``alignment_kind: flow`` replaces IMF_A by a predicted flow + occlusion mask
    and a grid_sample warp per scale (``FlowMotionAlignment``). The attributes keep their names, so
    ``token_decoder`` is "token → m^1..m^4" and ``motion_alignment`` "m_c, m_r, f_r → f_c" in every variant.

    Config: the whole ``IMFConfig``; each part reads its own fields (see its class). ``resolution`` is the
    frame side S that ``encode_token`` and ``prepare_reference`` check, ``d_m`` the token size that
    ``decode`` checks. The config is kept as ``self.config`` and saved with the weights by ``save_pretrained``.
    """

    def __init__(self, config: IMFConfig):
        super().__init__()
        self.config = config
        self.token_encoder = LatentTokenEncoder(config)  # E_T
        self.feature_encoder = DenseFeatureEncoder(config)  # E_F
        self.token_decoder = (KeypointMotionDecoder(config) if config.token_kind == "keypoints"
                              else LatentTokenDecoder(config))  # IMF_D
        self.motion_alignment = (FlowMotionAlignment(config) if config.alignment_kind == "flow"
                                 else ImplicitMotionAlignment(config))  # IMF_A
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
