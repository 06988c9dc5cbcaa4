"""ψ, the token editor of the paper's §3.4 (token manipulation), and its config.

Saved like the model (``imf.checkpoint``: a folder with ``editor_config.json`` and ``editor.safetensors``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imf.errors import ConfigError
from imf.strict import check_types, from_mapping, require

CONDITION_SOURCES = ("landmarks", "file")


@dataclass(frozen=True)
class EditorConfig:
    """Architecture of ψ and the meaning of its condition vector.

    d_m: token size of the IMF it edits. cond_dim: size of the condition h; condition_names: one name
    per entry of h (e.g. yaw, pitch, roll, eye, mouth). condition_source: "landmarks" (h is measured on
    frames by ``imf.editing``'s built-in extractor, so a source image's own values can be measured) or
    "file" (h comes from user-provided per-frame arrays, e.g. 3DMM coefficients of an external tracker).
    hidden: width of every hidden layer; layers: Linear layers in each of the three MLPs (>= 1).
    residual: the decoder predicts t̃ − t_s (zero at initialisation) instead of t̃.
    """

    d_m: int
    cond_dim: int
    condition_names: tuple[str, ...]
    condition_source: str = "landmarks"
    hidden: int = 256
    layers: int = 3
    residual: bool = True

    def __post_init__(self) -> None:
        check_types(self, "editor")
        at_least_1 = (lambda v: v >= 1, "must be a positive integer")
        require("editor", self, {"d_m": at_least_1, "cond_dim": at_least_1, "hidden": at_least_1,
                                 "layers": at_least_1})
        if len(self.condition_names) != self.cond_dim:
            raise ConfigError(f"editor cond_dim is {self.cond_dim} but {len(self.condition_names)} condition "
                              f"name(s) are given: {list(self.condition_names)}")
        if len(set(self.condition_names)) != len(self.condition_names):
            raise ConfigError(f"editor condition names repeat: {list(self.condition_names)}")
        for n in self.condition_names:
            if not isinstance(n, str) or not n or not n.replace("_", "").isalnum():
                raise ConfigError(f"editor condition name {n!r} must be a non-empty word (letters, digits, _)")
        if self.condition_source not in CONDITION_SOURCES:
            raise ConfigError(f"editor condition_source must be one of {CONDITION_SOURCES}, "
                              f"got {self.condition_source!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["condition_names"] = list(self.condition_names)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EditorConfig":
        return from_mapping(cls, data, "editor config")


def _mlp(d_in: int, hidden: int, d_out: int, layers: int) -> nn.Sequential:
    """``layers`` Linear layers d_in → hidden → … → d_out with SiLU between (none after the last)."""
    dims = [d_in] + [hidden] * (layers - 1) + [d_out]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods.append(nn.SiLU())
    return nn.Sequential(*mods)


class TokenEditor(nn.Module):
    """ψ, the token editor (paper §3.4, Eq. 3): with the whole IMF frozen, (t_s, h) → edited token t̃.

        t̃ = ψ(t_s | h) = Dec( [Enc_t(t_s), Enc_h(ĥ)] )  (+ t_s when ``residual``)      ĥ = (h − μ_h) / σ_h

    Dimension letters: b batch, d d_m (token size), c cond_dim (condition size), w hidden width.

        t_s (b, d) ─► Enc_t (MLP) ─► SiLU ─► (b, w) ────┐
        h (b, c) ─► ĥ ─► Enc_h (MLP) ─► SiLU ─► (b, w) ─┴─► concat (b, 2w) ─► Dec (MLP) ─► (b, d)
          ─► (+ t_s when ``residual``) ─► t̃ (b, d)      (paper-256, built-in condition: d = 32, c = 5, w = 256)

    The edited frame is D_F(IMF_A(IMF_D(t̃), IMF_D(t_s), E_F(x_s))), i.e.
    ``model.decode(t̃, model.prepare_reference(x_s))``. The paper gives ψ's structure (two MLP encoders,
    one MLP decoder) but no sizes, losses or code for ψ: the MLPs' widths and depths and the residual form
    are our choices, all fields of ``EditorConfig``.

    Config (``EditorConfig``): ``d_m`` d and ``cond_dim`` c; ``hidden`` w, the width of every hidden layer;
    ``layers``, the Linear layers of each MLP (SiLU between them); ``residual``, Dec predicts t̃ − t_s.
    ``condition_names`` name the entries of h in error messages.
    """

    def __init__(self, config: EditorConfig):
        super().__init__()
        self.config = c = config
        self.token_encoder = _mlp(c.d_m, c.hidden, c.hidden, c.layers)  # Enc_t: (b, d) → (b, w)
        self.condition_encoder = _mlp(c.cond_dim, c.hidden, c.hidden, c.layers)  # Enc_h: (b, c) → (b, w)
        self.decoder = _mlp(2 * c.hidden, c.hidden, c.d_m, c.layers)  # Dec: (b, 2w) → (b, d)
        self.act = nn.SiLU()
        # μ_h, σ_h of the training conditions, kept as buffers in the weights file: conditions mix units
        # (degrees of head pose beside ratios near 0.3), so h is normalised per dimension
        self.register_buffer("cond_mean", torch.zeros(c.cond_dim))
        self.register_buffer("cond_std", torch.ones(c.cond_dim))
        # with ``residual``, Dec's last layer starts at zero, so a freshly initialised editor returns t_s
        # unchanged (the edited frame is then the IMF reconstruction of the source)
        if c.residual:
            last = self.decoder[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def set_condition_stats(self, mean: torch.Tensor, std: torch.Tensor, min_std: float = 1e-3) -> None:
        """Store μ_h, σ_h (each (c,)) of the training conditions; σ is clamped to ``min_std``."""
        c = self.config.cond_dim
        if mean.shape != (c,) or std.shape != (c,):
            raise ValueError(f"condition statistics must have shape ({c},), got {tuple(mean.shape)} and "
                             f"{tuple(std.shape)}")
        self.cond_mean.copy_(mean.to(self.cond_mean))
        self.cond_std.copy_(std.to(self.cond_std).clamp_min(min_std))

    def forward(self, t_s: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """t_s (b, d_m) source tokens, h (b, cond_dim) conditions in their own units → t̃ (b, d_m)."""
        c = self.config
        if t_s.ndim != 2 or t_s.shape[1] != c.d_m:
            raise ValueError(f"t_s must have shape (B, {c.d_m}), got {tuple(t_s.shape)}")
        if h.ndim != 2 or h.shape != (t_s.shape[0], c.cond_dim):
            raise ValueError(f"h must have shape ({t_s.shape[0]}, {c.cond_dim}) "
                             f"({', '.join(c.condition_names)}), got {tuple(h.shape)}")
        h_norm = (h - self.cond_mean) / self.cond_std  # (b, c)
        z = torch.cat([self.act(self.token_encoder(t_s)), self.act(self.condition_encoder(h_norm))], dim=1)  # (b, 2w)
        delta = self.decoder(z)  # (b, d)
        return t_s + delta if c.residual else delta

    # ---- folders: the I/O lives in imf.checkpoint, with every other model folder -----------------------
    def save_pretrained(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """``imf.checkpoint.save_editor``: ``path/editor_config.json`` (+ ``extra`` metadata) and
        ``path/editor.safetensors``, each written atomically."""
        from imf.checkpoint import save_editor

        save_editor(self, path, extra)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "TokenEditor":
        from imf.checkpoint import load_editor

        return load_editor(path, map_location)
