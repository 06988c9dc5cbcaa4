"""The training config: one YAML file with sections ``model``, ``data``, ``loss``, ``optim`` and ``run``.

Every weight and knob of the recipe is a field; unknown keys are errors. ``configs/*.yaml`` hold the
presets (``paper-256.yaml`` carries the paper's hyper-parameters).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imf.config import IMFConfig
from imf.data.dataset import DataConfig
from imf.errors import ConfigError
from imf.strict import finite_at_least, from_mapping, require


def _from_dict(cls, data: Any, section: str):
    return from_mapping(cls, data, f"config section {section!r}")


@dataclass(frozen=True)
class LossConfig:
    """L = l1·L1 + perceptual·VGG + gan·hinge GAN (paper: 10, 10, 1)."""

    l1: float = 10.0
    perceptual: float = 10.0
    gan: float = 1.0
    gan_start_step: int = 0
    """The GAN terms (and the discriminator's updates) start at this step."""
    perceptual_scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    perceptual_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    perceptual_taps: str = "first"
    """VGG layers: "first" = relu1_1..relu5_1 (FOMM's), "last" = relu1_2..relu5_3 (imf 0.1)."""
    perceptual_pyramid: str = "gaussian"
    """Image pyramid filter: "gaussian" (a Gaussian blur with FOMM's σ, then subsampling) or "area" (box)."""
    perceptual_pretrained: bool = True
    """ImageNet VGG16 (True) or a random VGG (False: only for fast tests)."""

    def __post_init__(self) -> None:
        nonneg = finite_at_least(0.0)
        require("loss", self, {
            "l1": (nonneg, "must be a finite number >= 0"), "perceptual": (nonneg, "must be a finite number >= 0"),
            "gan": (nonneg, "must be a finite number >= 0"), "gan_start_step": (lambda v: v >= 0, "must be >= 0"),
            "perceptual_scales": (lambda v: len(v) > 0 and all(0 < x <= 1 for x in v), "must be scales in (0, 1]"),
            "perceptual_layer_weights": (lambda v: len(v) == 5 and all(x >= 0 for x in v),
                                         "must be 5 weights >= 0 (one per VGG tap)"),
        })
        if self.l1 == 0 and self.perceptual == 0:
            raise ConfigError("loss: l1 and perceptual are both 0: the generator would learn nothing")


@dataclass(frozen=True)
class OptimConfig:
    """Adam for generator and discriminator (paper: lr 2e-4, β = (0.5, 0.999))."""

    lr: float = 2e-4
    disc_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    decay: str = "none"
    """"none" (constant after warm-up) or "cosine" (to min_lr_ratio·lr at max_steps)."""
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    """Clip the global gradient norm of each network to this (0 = off)."""
    ema_decay: float = 0.999
    ema_start_step: int = 0

    def __post_init__(self) -> None:
        if self.decay not in ("none", "cosine"):
            raise ConfigError(f"optim.decay must be 'none' or 'cosine', got {self.decay!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"optim.ema_decay must be in [0, 1), got {self.ema_decay}")
        positive, nonneg = finite_at_least(0.0, inclusive=False), finite_at_least(0.0)
        require("optim", self, {
            "lr": (positive, "must be a finite number > 0"), "disc_lr": (positive, "must be a finite number > 0"),
            "betas": (lambda v: all(0 <= b < 1 for b in v), "must be two numbers in [0, 1)"),
            "weight_decay": (nonneg, "must be a finite number >= 0"),
            "warmup_steps": (lambda v: v >= 0, "must be >= 0"),
            "min_lr_ratio": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
            "grad_clip": (nonneg, "must be a finite number >= 0 (0 = off)"),
            "ema_start_step": (lambda v: v >= 0, "must be >= 0"),
        })


@dataclass(frozen=True)
class RunConfig:
    batch_size: int = 16
    """Global batch (split evenly over DDP ranks). Paper: 64 on 8 GPUs."""
    max_steps: int = 1000
    num_workers: int = 2
    seed: int = 0
    precision: str = "auto"
    """"auto" (bf16 on a GPU that has it, else fp16 with a grad scaler; on CPU bf16 where the CPU has fast bf16,
    detected by ``imf.precision.cpu_has_fast_bf16``, else fp32), "fp32", "bf16" (fp32 with a warning on a CPU
    without fast bf16), "fp16" (GPU only; fp32 with a warning on CPU)."""
    compile: bool = False
    """torch.compile the generator (GPU only; ignored on CPU)."""
    log_every: int = 10
    image_every: int = 200
    val_every: int = 200
    val_batches: int = 4
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    max_nonfinite_steps: int = 5
    """Stop with an error after this many non-finite losses in a row (each one skips its step)."""

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"run.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        at_least_1 = (lambda v: v >= 1, "must be >= 1")
        require("run", self, {
            "batch_size": at_least_1, "max_steps": (lambda v: v >= 0, "must be >= 0"),
            "num_workers": (lambda v: v >= 0, "must be >= 0"), "log_every": at_least_1, "image_every": at_least_1,
            "val_every": at_least_1, "val_batches": (lambda v: v >= 0, "must be >= 0"),
            "checkpoint_every": at_least_1, "keep_checkpoints": (lambda v: v >= 0, "must be >= 0 (0 = keep all)"),
            "max_nonfinite_steps": at_least_1,
        })


@dataclass(frozen=True)
class TrainConfig:
    model: IMFConfig = field(default_factory=lambda: IMFConfig.preset("tiny-64"))
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.data.size != self.model.resolution:
            raise ConfigError(f"data.size ({self.data.size}) must equal the model resolution "
                              f"({self.model.resolution})")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ConfigError("a training config must be a mapping with sections model, data, loss, optim, run")
        unknown = sorted(set(d) - {"model", "data", "loss", "optim", "run"})
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
        for section in ("model", "data"):
            if d.get(section) is not None and not isinstance(d[section], dict):
                raise ConfigError(f"config section {section!r} must be a mapping, got {type(d[section]).__name__}")
        model = dict(d.get("model") or {})
        if not model:  # no model section: the same default as TrainConfig()
            model = {"preset": "tiny-64"}
        preset = model.pop("preset", None)
        model_cfg = IMFConfig.preset(preset, **model) if preset else IMFConfig.from_dict(model)
        data = dict(d.get("data") or {})
        data.setdefault("size", model_cfg.resolution)
        return cls(model=model_cfg, data=DataConfig.from_dict(data),
                   loss=_from_dict(LossConfig, d.get("loss"), "loss"),
                   optim=_from_dict(OptimConfig, d.get("optim"), "optim"),
                   run=_from_dict(RunConfig, d.get("run"), "run"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        return cls.from_dict(data or {})

    def to_dict(self) -> dict[str, Any]:
        def plain(obj):
            return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}

        return {"model": self.model.to_dict(), "data": plain(self.data), "loss": plain(self.loss),
                "optim": plain(self.optim), "run": plain(self.run)}

    def replace_run(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, run=dataclasses.replace(self.run, **changes))
