"""Typed, frozen configs and the presets.

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
from imf.strict import check_types, from_mapping

PRESETS = ("paper-256", "small-128", "cpu-128", "tiny-64")
TOKEN_KINDS = ("implicit", "keypoints")
ALIGNMENT_KINDS = ("attention", "flow")

LAYOUT_VERSION = 2
"""Version of the network layout that a config describes. 2: the supplement's Fig. 1 part by part
(IMF_D with 10 + 3 StyledConvs and 512-wide side branches, UpConvResBlocks with two FeatResBlocks,
separate P_q and P_k, E_T's ResBlocks ConvLayer-d twice, a 1×1 stem and no activations after the squeeze
and in the MLP). 1 (imf 0.1): IMF_D with 16 StyledConvs, UpConvResBlocks with a 1×1 skip and no
FeatResBlocks, one positional embedding shared by Q and K, E_T with a 3×3 stem and leaky ReLUs in its MLP."""


MAX_RESOLUTION = 1024
MAX_WIDTH = 2048
"""Largest channel width (and token size) a config may ask for: 4× paper-256's widest layer."""
MAX_COUNT = 64
"""Largest layer / block / head count of any part."""


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
    token_encoder_stem_kernel: int = 1
    """Kernel of the ConvLayer stem. The figure does not say; the StyleGAN2-style encoder E_T derives from
    (LIA's appearance/motion encoder) uses 1×1, as here."""
    token_encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    token_encoder_mlp_width: int = 512
    token_encoder_mlp_layers: int = 4
    token_encoder_mlp_activation: bool = False
    """Leaky ReLU after each of the MLP's EqualLinears. The figure draws plain EqualLinear-512 blocks (and
    EqualConv-512, not ConvLayer, for the squeeze), as LIA's encoder has them: no activation."""

    # E_F, dense feature encoder: Conv k7 stem, then five DownConvResBlocks (each ↓2);
    # the outputs of the last four are f^1..f^4.
    feature_encoder_stem: int = 64
    feature_encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 512)

    # IMF_D, latent token decoder (supplement Fig. 1(c)): a learned constant at R/64, then a main path of
    # StyledConvs, per level (R/64, R/32, R/16, R/8, R/4) ``token_decoder_layers[i]`` of width
    # ``token_decoder_channels[i]``, the first of each upsampled level ↑2; side-branch StyledConvs of width
    # ``token_decoder_side_channels`` read m^4, m^3, m^2 after levels 1, 2, 3; m^1 is the last main layer.
    # Paper: 1 + 2 + 2 + 2 + 3 = 10 main + 3 side = 13 StyledConvs.
    token_decoder_channels: tuple[int, ...] = (512, 512, 512, 512, 256)
    token_decoder_layers: tuple[int, ...] = (1, 2, 2, 2, 3)
    token_decoder_side_channels: int = 512

    # IMF_A, implicit motion alignment. Heads and widths are not given by the paper; our choices:
    cross_attention_heads: int = 1
    """The paper writes a single softmax(QKᵀ/√d_k)V; 1 head reproduces it exactly."""
    pos_embed_init_std: float = 1.5
    """Initial std of the learned positional embeddings P_q and P_k (paper §3.3: P_q added to the queries,
    P_k to the keys). Both start from the same draw, so that at step 0 a query scores its own position
    highest and the cross-attention of a frame with its own reference starts close to an identity warp;
    at 0.02 (a common default) it starts as a blur over the reference (measured: 2-4.6 dB worse on new
    people after 20 CPU minutes)."""
    pos_embed_init_length: float = 0.0
    """0: P_q, P_k start from independent draws per position. > 0: from a spatially smooth draw (random
    Fourier features of the position; Gaussian kernel of this length in grid cells of each scale), so that
    neighbouring positions start with similar embeddings: the identity-warp prior then scores a query's
    neighbours of the reference close to its own position, and the attention can learn to shift from the
    start instead of being locked on the diagonal. Same std (``pos_embed_init_std``); learned either way."""
    transformer_attention_norm: bool = False
    """LayerNorm before the self-attention. Supplement eq. 6 writes TransformerBlock(x) = FFN(MHSA(x)) with
    FFN(x) = GELU(LN(x)W1 + b1)W2 + b2: LN inside the FFN only, which is the default."""
    transformer_blocks: int = 4
    transformer_head_dim: int = 64
    """Self-attention heads per scale = channels of f^l / head_dim (paper-256: 2, 4, 8, 8 heads)."""
    transformer_ffn_ratio: int = 4
    """FFN hidden width = ratio × channels of f^l."""
    use_sdpa: bool = True
    """Attention through F.scaled_dot_product_attention (never materialises N×N on the fused kernels);
    False uses the explicit-softmax reference path."""

    # Explicit variants of the paper's ablation (§3.2, §3.5, Table 3); the defaults are the paper's IMF.
    token_kind: str = "implicit"
    """"implicit": the paper's latent token t ∈ R^{d_m}, decoded by IMF_D into m^1..m^4. "keypoints": the
    explicit token of §3.2, d = K × 2 keypoint coordinates (x, y) in [-1, 1] (FOMM-style), E_T unchanged but
    for a tanh on its output; m^l = a learned 1×1 projection of the keypoints' Gaussian heatmaps at scale l
    (§3.3: "the motion features are Gaussian heatmaps converted from the keypoints") instead of IMF_D."""
    num_keypoints: int = 16
    """K, for ``token_kind: keypoints``; d_m must then be 2K (16 keypoints = 32 numbers, the paper's d_m, so
    that the ablation compares representations at one token size; FOMM uses 10)."""
    keypoint_sigma: float = 0.1
    """Std of the keypoints' Gaussian heatmaps in normalised coordinates ([-1, 1] spans the frame; FOMM's
    kp_variance 0.01 is σ = 0.1), floored at each scale to half a pixel so that no keypoint falls between
    the samples of a coarse scale."""
    alignment_kind: str = "attention"
    """"attention": the paper's IMF_A (cross-attention + transformer blocks). "flow": explicit alignment, per
    scale a small conv net predicts from (m_c, m_r) a dense flow and an occlusion mask, and f_r is warped
    with grid_sample and multiplied by the mask (FOMM-style); the transformer fields are then unused."""
    flow_layers: int = 2
    """3×3 conv layers (ReLU after each) of the flow net before its output conv; each as wide as m^l."""
    flow_max_offset: float = 1.0
    """Bound of the flow: offset = flow_max_offset · tanh(·) in normalised coordinates (1.0: half the frame)."""

    # D_F, frame decoder (Fig. 1(e)): five UpConvResBlocks (each ↑2, each ending in
    # ``frame_decoder_block_resblocks`` FeatResBlocks) from f_c^4; skips of ``frame_decoder_skip_blocks``
    # FeatResBlocks from f_c^3, f_c^2, f_c^1.
    frame_decoder_channels: tuple[int, ...] = (512, 512, 256, 128, 64)
    frame_decoder_block_resblocks: int = 2
    frame_decoder_skip_blocks: int = 3

    # Discriminator (training only): two scales of 4×4/s2 spectral-norm patch convs.
    discriminator_channels: tuple[int, ...] = (64, 128, 256, 512)
    discriminator_scales: int = 2

    def __post_init__(self) -> None:
        check_types(self, "model")  # lists -> tuples, ints -> floats, wrong types named (also when built in Python)
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
        """Channels of m^1..m^4: m^1 is the last main StyledConv (the last level's width), m^2..m^4 the
        side branches' (paper-256: 256, 512, 512, 512). The attention has no projections, so Q·K runs
        over c_m while the output keeps V's width c_f."""
        return (self.token_decoder_channels[-1],) + (self.token_decoder_side_channels,) * 3

    @property
    def num_styled_convs(self) -> int:
        """Main path plus the three side branches (paper: 10 + 3 = 13)."""
        return sum(self.token_decoder_layers) + 3

    def validate(self) -> None:
        r = self.resolution
        if not isinstance(r, int) or r < 64 or r > MAX_RESOLUTION or r & (r - 1):
            raise ConfigError(f"resolution must be a power of two in 64..{MAX_RESOLUTION}, got {r!r}")
        if not isinstance(self.d_m, int) or not 1 <= self.d_m <= MAX_WIDTH:
            raise ConfigError(f"d_m must be an integer in 1..{MAX_WIDTH}, got {self.d_m!r}")
        # bounds before anything is built: a damaged config.json must not allocate gigabytes first
        widths = {"token_encoder_stem": (self.token_encoder_stem,), "token_encoder_channels": self.token_encoder_channels,
                  "token_encoder_mlp_width": (self.token_encoder_mlp_width,),
                  "feature_encoder_stem": (self.feature_encoder_stem,),
                  "feature_encoder_channels": self.feature_encoder_channels,
                  "token_decoder_channels": self.token_decoder_channels,
                  "token_decoder_side_channels": (self.token_decoder_side_channels,),
                  "transformer_head_dim": (self.transformer_head_dim,),
                  "frame_decoder_channels": self.frame_decoder_channels,
                  "discriminator_channels": self.discriminator_channels}
        for name, values in widths.items():
            if any(not 1 <= v <= MAX_WIDTH for v in values):
                raise ConfigError(f"{name} must be widths in 1..{MAX_WIDTH}, got {values}")
        counts = {"token_encoder_mlp_layers": (self.token_encoder_mlp_layers,),
                  "token_decoder_layers": self.token_decoder_layers, "transformer_blocks": (self.transformer_blocks,),
                  "transformer_ffn_ratio": (self.transformer_ffn_ratio,),
                  "cross_attention_heads": (self.cross_attention_heads,),
                  "frame_decoder_block_resblocks": (self.frame_decoder_block_resblocks,),
                  "frame_decoder_skip_blocks": (self.frame_decoder_skip_blocks,),
                  "discriminator_scales": (self.discriminator_scales,)}
        for name, values in counts.items():
            if any(v > MAX_COUNT for v in values):
                raise ConfigError(f"{name} must be at most {MAX_COUNT}, got {values}")
        if not (math.isfinite(self.pos_embed_init_std) and 0 <= self.pos_embed_init_std <= 100):
            raise ConfigError(f"pos_embed_init_std must be a number in [0, 100], got {self.pos_embed_init_std!r}")
        if not (math.isfinite(self.pos_embed_init_length) and 0 <= self.pos_embed_init_length <= 1000):
            raise ConfigError("pos_embed_init_length must be a number in [0, 1000] (grid cells; 0 = independent "
                              f"draws), got {self.pos_embed_init_length!r}")
        n_down = int(math.log2(r // 4))
        if len(self.token_encoder_channels) != n_down:
            raise ConfigError(
                f"token_encoder_channels needs {n_down} entries (one ResBlock per ↓2 from {r} to 4), "
                f"got {len(self.token_encoder_channels)}")
        for name, n in (("feature_encoder_channels", 5), ("token_decoder_channels", 5),
                        ("token_decoder_layers", 5), ("frame_decoder_channels", 5), ("discriminator_channels", 4)):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"{name} needs {n} entries, got {len(getattr(self, name))}")
        self._validate_variants()
        for c in self.feature_channels if self.alignment_kind == "attention" else ():
            if c % self.transformer_head_dim:
                raise ConfigError(
                    f"feature width {c} is not a multiple of transformer_head_dim {self.transformer_head_dim}")
        for c in self.motion_channels if self.alignment_kind == "attention" else ():
            if c % self.cross_attention_heads:
                raise ConfigError(f"motion width {c} is not a multiple of cross_attention_heads")
        for name in ("token_encoder_mlp_layers", "transformer_blocks", "token_decoder_side_channels",
                     "frame_decoder_skip_blocks", "discriminator_scales", "transformer_ffn_ratio"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(n < 1 for n in self.token_decoder_layers):
            raise ConfigError(f"token_decoder_layers must all be >= 1, got {self.token_decoder_layers}")
        if self.frame_decoder_block_resblocks < 0:
            raise ConfigError(f"frame_decoder_block_resblocks must be >= 0, got {self.frame_decoder_block_resblocks}")
        if self.token_encoder_stem_kernel not in (1, 3):
            raise ConfigError(f"token_encoder_stem_kernel must be 1 or 3, got {self.token_encoder_stem_kernel}")
        if not self.pos_embed_init_std >= 0:
            raise ConfigError(f"pos_embed_init_std must be >= 0, got {self.pos_embed_init_std}")

    def _validate_variants(self) -> None:
        if self.token_kind not in TOKEN_KINDS:
            raise ConfigError(f"token_kind must be one of {', '.join(TOKEN_KINDS)}, got {self.token_kind!r}")
        if self.alignment_kind not in ALIGNMENT_KINDS:
            raise ConfigError(f"alignment_kind must be one of {', '.join(ALIGNMENT_KINDS)}, "
                              f"got {self.alignment_kind!r}")
        if not 1 <= self.num_keypoints <= MAX_WIDTH // 2:
            raise ConfigError(f"num_keypoints must be in 1..{MAX_WIDTH // 2}, got {self.num_keypoints}")
        if self.token_kind == "keypoints" and self.d_m != 2 * self.num_keypoints:
            raise ConfigError(f"token_kind keypoints sends (x, y) per keypoint: d_m must be 2 × num_keypoints = "
                              f"{2 * self.num_keypoints}, got d_m = {self.d_m}")
        if not (math.isfinite(self.keypoint_sigma) and 0 < self.keypoint_sigma <= 10):
            raise ConfigError(f"keypoint_sigma must be a number in (0, 10], got {self.keypoint_sigma!r}")
        if not 1 <= self.flow_layers <= MAX_COUNT:
            raise ConfigError(f"flow_layers must be in 1..{MAX_COUNT}, got {self.flow_layers}")
        if not (math.isfinite(self.flow_max_offset) and 0 < self.flow_max_offset <= 2):
            raise ConfigError(f"flow_max_offset must be a number in (0, 2], got {self.flow_max_offset!r}")

    # ---- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, but the variant fields only where they differ from the paper's IMF: a default
        config.json, and so ``imf.checkpoint.model_hash`` (which codec tables and .imf files name), reads
        exactly as before the variants existed."""
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        for name in VARIANT_FIELDS:
            if out[name] == _DEFAULTS[name]:
                del out[name]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IMFConfig":
        return from_mapping(cls, data, "model config")

    def replace(self, **changes: Any) -> "IMFConfig":
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "IMFConfig":
        """``paper-256`` (the paper's network), ``small-128`` (one consumer GPU), ``cpu-128`` (trains on a
        CPU, with the paper's geometry: a 2×2 constant and 4×4 coarsest scale), ``tiny-64`` (tests, CI)."""
        if name not in _PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls.from_dict({**_PRESETS[name], **overrides})


VARIANT_FIELDS = ("token_kind", "num_keypoints", "keypoint_sigma", "alignment_kind", "flow_layers",
                  "flow_max_offset", "pos_embed_init_length")
"""Fields added after network layout 2 (the explicit variants, the smooth P init): ``to_dict`` writes them only
when not at their defaults, so the model hash of a default config is unchanged."""
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(IMFConfig)}

_PRESETS: dict[str, dict[str, Any]] = {
    "paper-256": {},
    "small-128": dict(
        resolution=128,
        token_encoder_stem=32, token_encoder_channels=(64, 128, 256, 256, 256),
        token_encoder_mlp_width=256,
        feature_encoder_stem=32, feature_encoder_channels=(32, 64, 128, 256, 256),
        token_decoder_channels=(256, 256, 256, 256, 128), token_decoder_side_channels=256,
        transformer_head_dim=32,
        frame_decoder_channels=(256, 256, 128, 64, 32),
        discriminator_channels=(32, 64, 128, 256),
    ),
    "tiny-64": dict(
        resolution=64,
        token_encoder_stem=16, token_encoder_channels=(32, 64, 64, 64),
        token_encoder_mlp_width=64,
        feature_encoder_stem=16, feature_encoder_channels=(16, 32, 64, 64, 64),
        token_decoder_channels=(64, 64, 64, 64, 32), token_decoder_side_channels=64,
        transformer_head_dim=16, transformer_ffn_ratio=2,
        frame_decoder_channels=(64, 64, 32, 32, 16),
        discriminator_channels=(16, 32, 64, 64),
    ),
}
# cpu-128: tiny-64's widths at 128² (one more E_T ResBlock), so that the learned constant is 2×2 and the
# coarsest scale 4×4, as the paper's geometry has them, at a cost a CPU can train.
_PRESETS["cpu-128"] = {**_PRESETS["tiny-64"], "resolution": 128, "token_encoder_channels": (32, 64, 64, 64, 64)}
