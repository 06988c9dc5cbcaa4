"""Typed, frozen configs and the presets (DESIGN §1).

The structure (scales, blocks, attention) is the same for every preset; resolution and widths are fields.
Feature scales follow the paper at 256×256: f^1..f^4 live at R/4, R/8, R/16, R/32 (64², 32², 16², 8²).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from imf.errors import ConfigError

PRESETS = ("paper-256", "small-128", "tiny-64")


def _tupleize(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class IMFConfig:
    """Architecture of the whole IMF generator (E_T, E_F, IMF_D, IMF_A, D_F) and its discriminator.

    Widths are tuples, one entry per block, in the order data flows through the part.
    """

    resolution: int = 256
    """Side S of the square frames (B, 3, S, S) in [0, 1]. A power of two, at least 64."""
    d_m: int = 32
    """Latent token size (paper: 32; the codec study also uses 16, 64, 128)."""

    # E_T, latent token encoder (supplement Fig. 1): ConvLayer stem, then ResBlocks each ↓2 until 4×4,
    # an EqualConv over the 4×4 map (squeezing it to a vector), then an MLP of EqualLinears.
    token_encoder_stem: int = 64
    token_encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    token_encoder_mlp_width: int = 512
    token_encoder_mlp_layers: int = 4

    # E_F, dense feature encoder: Conv k7 stem, then five DownConvResBlocks (each ↓2);
    # the outputs of the last four are f^1..f^4.
    feature_encoder_stem: int = 64
    feature_encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 512)

    # IMF_D, latent token decoder: a learned constant at R/64, then StyledConvs. Widths per level
    # (R/64, R/32, R/16, R/8, R/4); one StyledConv at the constant's level and three at each of the four
    # upsampled levels (the first of which ↑2): 13 in all, as in the paper.
    token_decoder_channels: tuple[int, ...] = (512, 512, 512, 512, 256)
    token_decoder_layers_per_level: int = 3

    # IMF_A, implicit motion alignment. Heads and widths are not given by the paper; our choices:
    cross_attention_heads: int = 1
    """The paper writes a single softmax(QKᵀ/√d_k)V; 1 head reproduces it exactly."""
    transformer_blocks: int = 4
    transformer_head_dim: int = 64
    """Self-attention heads per scale = channels of f^l / head_dim (paper-256: 2, 4, 8, 8 heads)."""
    transformer_ffn_ratio: int = 4
    """FFN hidden width = ratio × channels of f^l."""
    use_sdpa: bool = True
    """Attention through F.scaled_dot_product_attention (never materialises N×N on the fused kernels);
    False uses the explicit-softmax reference path."""

    # D_F, frame decoder: five UpConvResBlocks (each ↑2) from f_c^4; skips from f_c^3, f_c^2, f_c^1.
    frame_decoder_channels: tuple[int, ...] = (512, 512, 256, 128, 64)
    frame_decoder_skip_blocks: int = 3

    # Discriminator (training only): two scales of 4×4/s2 spectral-norm patch convs.
    discriminator_channels: tuple[int, ...] = (64, 128, 256, 512)
    discriminator_scales: int = 2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _tupleize(getattr(self, f.name)))
        self.validate()

    # ---- derived shapes -------------------------------------------------------------------------
    @property
    def feature_sizes(self) -> tuple[int, ...]:
        """Spatial side of f^1..f^4 (and m^1..m^4): R/4, R/8, R/16, R/32."""
        return tuple(self.resolution // 2 ** (l + 2) for l in range(4))

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of f^1..f^4: the last four DownConvResBlock widths of E_F."""
        return tuple(self.feature_encoder_channels[1:])

    @property
    def motion_channels(self) -> tuple[int, ...]:
        """Channels of m^1..m^4. m^2..m^4 come from side-branch StyledConvs with the width of f^l;
        m^1 is the last StyledConv's output, as the paper says, so it has the last level's width."""
        return (self.token_decoder_channels[-1],) + self.feature_channels[1:]

    def validate(self) -> None:
        r = self.resolution
        if not isinstance(r, int) or r < 64 or r & (r - 1):
            raise ConfigError(f"resolution must be a power of two >= 64, got {r!r}")
        if not isinstance(self.d_m, int) or self.d_m < 1:
            raise ConfigError(f"d_m must be a positive integer, got {self.d_m!r}")
        n_down = int(math.log2(r // 4))
        if len(self.token_encoder_channels) != n_down:
            raise ConfigError(
                f"token_encoder_channels needs {n_down} entries (one ResBlock per ↓2 from {r} to 4), "
                f"got {len(self.token_encoder_channels)}")
        for name, n in (("feature_encoder_channels", 5), ("token_decoder_channels", 5),
                        ("frame_decoder_channels", 5), ("discriminator_channels", 4)):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"{name} needs {n} entries, got {len(getattr(self, name))}")
        for c in self.feature_channels:
            if c % self.transformer_head_dim:
                raise ConfigError(
                    f"feature width {c} is not a multiple of transformer_head_dim {self.transformer_head_dim}")
        for c in self.motion_channels:
            if c % self.cross_attention_heads:
                raise ConfigError(f"motion width {c} is not a multiple of cross_attention_heads")
        for name in ("token_encoder_mlp_layers", "transformer_blocks", "token_decoder_layers_per_level",
                     "frame_decoder_skip_blocks", "discriminator_scales", "transformer_ffn_ratio"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    # ---- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IMFConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown IMFConfig key(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "IMFConfig":
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "IMFConfig":
        """``paper-256`` (the paper's network), ``small-128`` (one consumer GPU), ``tiny-64`` (CPU, CI)."""
        if name not in _PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls.from_dict({**_PRESETS[name], **overrides})


_PRESETS: dict[str, dict[str, Any]] = {
    "paper-256": {},
    "small-128": dict(
        resolution=128,
        token_encoder_stem=32, token_encoder_channels=(64, 128, 256, 256, 256),
        token_encoder_mlp_width=256,
        feature_encoder_stem=32, feature_encoder_channels=(32, 64, 128, 256, 256),
        token_decoder_channels=(256, 256, 256, 256, 128),
        transformer_head_dim=32,
        frame_decoder_channels=(256, 256, 128, 64, 32),
        discriminator_channels=(32, 64, 128, 256),
    ),
    "tiny-64": dict(
        resolution=64,
        token_encoder_stem=16, token_encoder_channels=(32, 64, 64, 64),
        token_encoder_mlp_width=64,
        feature_encoder_stem=16, feature_encoder_channels=(16, 32, 64, 64, 64),
        token_decoder_channels=(64, 64, 64, 64, 32),
        transformer_head_dim=16, transformer_ffn_ratio=2,
        frame_decoder_channels=(64, 64, 32, 32, 16),
        discriminator_channels=(16, 32, 64, 64),
    ),
}
