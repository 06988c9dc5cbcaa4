"""The editor-training config: one flat YAML mapping of ``EditorTrainConfig`` fields (unknown keys are errors).

Loss (the paper gives none for ψ; these are our choices):

    L = token · ‖t̃ − t_t‖ (L2² mean, or L1)  +  pixel · |x̂_t − x_t|₁  +  perceptual · VGG(x̂_t, x_t)

where t̃ = ψ(t_s | h_t), t_t = E_T(x_t), x̂_t = D_F(IMF(t̃, t_s, f_s)) through the frozen IMF, and h_t is
the target frame's condition. The image weights follow the main trainer's 10 / 10.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imf.editing.measures import LANDMARK_MEASURES
from imf.errors import ConfigError
from imf.strict import check_types, finite_at_least, from_mapping, require


@dataclass(frozen=True)
class EditorTrainConfig:
    # ---- conditions
    conditions: tuple[str, ...] = LANDMARK_MEASURES
    """Condition names. With condition_source "landmarks", a subset of yaw, pitch, roll, eye, mouth."""
    condition_source: str = "landmarks"
    """"landmarks" (measured with dlib on the clip's frames) or "file" (``<clip>.conditions.npy|csv``)."""
    analysis_size: int = 256
    """Side of the frames the landmarks are measured on (the model's centre square, enlarged)."""
    # ---- ψ
    hidden: int = 256
    layers: int = 3
    residual: bool = True
    # ---- loss
    token_loss: str = "l2"
    """"l2" (mean squared error) or "l1"."""
    token: float = 1.0
    pixel: float = 10.0
    perceptual: float = 10.0
    perceptual_pretrained: bool = True
    """ImageNet VGG16 (True) or a random VGG (False: only for fast tests)."""
    perceptual_scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    # ---- optimiser
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    """Clip ψ's global gradient norm to this (0 = off)."""
    # ---- data (pairs of frames of one clip, no flips: a flip would change yaw and roll)
    min_distance: int = 1
    max_distance: int | None = None
    split_by: str = "frames"
    val_fraction: float = 0.2
    # ---- run
    batch_size: int = 16
    max_steps: int = 2000
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    val_every: int = 200
    val_batches: int = 4
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        check_types(self, "editor training")
        if not self.conditions:
            raise ConfigError("editor training needs at least one condition name")
        if self.condition_source not in ("landmarks", "file"):
            raise ConfigError(f"condition_source must be 'landmarks' or 'file', got {self.condition_source!r}")
        if self.condition_source == "landmarks":
            unknown = [n for n in self.conditions if n not in LANDMARK_MEASURES]
            if unknown:
                raise ConfigError(f"conditions {unknown} are not landmark measures ({', '.join(LANDMARK_MEASURES)}); "
                                  f"use condition_source: file for your own conditions")
        if self.token_loss not in ("l1", "l2"):
            raise ConfigError(f"token_loss must be 'l1' or 'l2', got {self.token_loss!r}")
        nonneg, at_least_1 = (finite_at_least(0.0), "must be a finite number >= 0"), (lambda v: v >= 1, "must be >= 1")
        require("editor training", self, {
            **{name: nonneg for name in ("token", "pixel", "perceptual", "lr", "weight_decay", "grad_clip")},
            **{name: at_least_1 for name in ("analysis_size", "hidden", "layers", "batch_size", "log_every",
                                             "val_every", "checkpoint_every", "keep_checkpoints")},
            **{name: (lambda v: v >= 0, "must be >= 0") for name in ("max_steps", "num_workers", "val_batches")},
            "betas": (lambda v: all(0 <= b < 1 for b in v), "must be two numbers in [0, 1)"),
            "perceptual_scales": (lambda v: len(v) > 0 and all(0 < x <= 1 for x in v), "must be scales in (0, 1]"),
            "val_fraction": (lambda v: 0 <= v < 1, "must be in [0.0, 1.0)"),
        })
        if self.token + self.pixel + self.perceptual <= 0:
            raise ConfigError("at least one of the loss weights token, pixel, perceptual must be positive")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EditorTrainConfig":
        return from_mapping(cls, data, "editor training config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "EditorTrainConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            return cls.from_dict(yaml.safe_load(path.read_text()))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> "EditorTrainConfig":
        return self.from_dict({**self.to_dict(), **changes})
