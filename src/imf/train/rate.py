"""Rate-aware fine-tuning of E_T for the codec (a second training stage), on the shared loop (``imf.train.loop``).

The first stage trains IMF for reconstruction only; the codec then quantizes its tokens. This stage
fine-tunes the latent token encoder E_T (everything else frozen, the model kept in eval mode so no
batch-norm statistics move) for a target quality and rate trade-off λ:

    z   = (E_T(x_c) - center) / step            step = spread * step_scale(quality)  (the codec's steps)
    z~  = z + u,  u ~ U(-1/2, 1/2)              additive-noise proxy of rounding (Ballé et al. 2017)
    x^  = IMF_D/IMF_A/D_F(center + z~ * step, reference)          reference = x_r, encoded as usual
    L   = w_l1 * L1(x^, x_c) + w_p * VGG(x^, x_c) + λ * bits(z~)   bits summed over d, mean over frames

``bits(z) = -Σ_j log2 P_j(round-bin of z_j)`` under a learned per-dimension *discretized Laplace* rate
model (location and scale per dimension, :class:`LaplaceRateModel`), the differentiable stand-in for
the codec's static integer tables. The rate model learns from the same bits (its own gradient, with
the tokens detached); E_T gets λ times the gradient of the bits through the tokens (with the rate
model's parameters detached), so λ = 0 fine-tunes E_T for robustness to quantization only.
At evaluation time tokens are rounded exactly as :class:`TokenQuantizer` does.

After fine-tuning the codec's integer tables are refitted on the training frames (:func:`refit_tables`).
By default the quantizer (center and spread, hence every quality's absolute step) is *kept* from the
tables before fine-tuning: the steps are what the fine-tuning optimised for, and the frozen decoder
reads tokens in absolute units. Refitting the spread instead (``keep_quantizer=False``, plain
:func:`imf.codec.fit.fit_codec`) re-normalises the new tokens, which gives back most of the rate
saved by shrinking them (a step relative to each dimension's spread makes the rate scale-invariant).

Temporal variant: not implemented; pairs are (reference, current) at random distances, so the rate
term models the static entropy model. The temporal tables are still refitted afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from imf.codec.fit import fit_codec
from imf.codec.quantizer import DEFAULT_QUALITY, TokenQuantizer, step_scale
from imf.codec.rate_model import LaplaceRateModel, refit_tables
from imf.codec.tables import CodecTables, has_tables, load_tables
from imf.data.dataset import DataConfig, PairDataset
from imf.devices import model_device
from imf.errors import ConfigError, IMFError
from imf.progress import progress_bar
from imf.train.loop import LoopState, run_steps

FINETUNE_JSON = "rate_finetune.json"


@dataclass(frozen=True)
class RateFinetuneConfig:
    """Settings of the rate-aware fine-tuning (see the module docstring).

    lambda_rate: λ, loss weight of one bit per frame. quality: the codec quality whose steps are trained for.
    max_steps, batch_size: optimisation steps and pairs per step. lr: Adam learning rate of E_T;
    rate_lr: of the rate model. l1_weight, perceptual_weight: distortion weights (the paper's 10 and 10;
    perceptual_weight 0 skips the VGG, much faster on a CPU). perceptual_pretrained: ImageNet VGG16
    (False: random weights, tests only). grad_clip: max gradient norm of E_T (None: off).
    keep_quantizer: refit the tables with the pre-fine-tuning center/spread (True) or refit those too.
    seed: seeds pair sampling and the noise. data: pair sampling (default: every frame, no flips, as the
    codec sees them; flipped frames make tokens the tables never saw); its ``size`` is the model's resolution.
    """

    lambda_rate: float = 0.01
    quality: int = DEFAULT_QUALITY
    max_steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    rate_lr: float = 1e-2
    l1_weight: float = 10.0
    perceptual_weight: float = 10.0
    perceptual_pretrained: bool = True
    grad_clip: float | None = 1.0
    keep_quantizer: bool = True
    seed: int = 0
    data: DataConfig = field(default_factory=lambda: DataConfig(split_by="frames", val_fraction=0.0, hflip_prob=0.0))

    def __post_init__(self) -> None:
        step_scale(self.quality)  # ConfigError naming a bad quality
        checks = [
            ("lambda_rate", self.lambda_rate >= 0, "must be >= 0"),
            ("max_steps", isinstance(self.max_steps, int) and self.max_steps >= 1, "must be an integer >= 1"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 1, "must be an integer >= 1"),
            ("lr", self.lr > 0, "must be > 0"),
            ("rate_lr", self.rate_lr > 0, "must be > 0"),
            ("l1_weight", self.l1_weight >= 0, "must be >= 0"),
            ("perceptual_weight", self.perceptual_weight >= 0, "must be >= 0"),
            ("grad_clip", self.grad_clip is None or self.grad_clip > 0, "must be > 0 or None"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"rate fine-tuning: {name} {rule}, got {getattr(self, name)!r}")
        if self.l1_weight == 0 and self.perceptual_weight == 0:
            raise ConfigError("rate fine-tuning needs a distortion term: l1_weight and perceptual_weight are both 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------- fine-tuning
@dataclass
class RateFinetuneResult:
    """What :func:`finetune_rate` did. history: one dict per step (loss, l1, perceptual, bits = proxy
    bits/frame with noise, bits_rounded = bits/frame of the rounded tokens under the rate model).
    rate_model: learned loc and scale per dimension (in quantization steps)."""

    steps: int
    history: list[dict[str, float]]
    rate_model: dict[str, list[float]]

    def mean_of_last(self, key: str, fraction: float = 0.1) -> float:
        tail = self.history[-max(1, int(len(self.history) * fraction)):]
        return float(np.mean([h[key] for h in tail]))


def finetune_rate(model, tables: CodecTables, pairs: PairDataset, config: RateFinetuneConfig, *,
                  progress: bool = True, callback: Callable[[int, dict[str, float]], None] | None = None
                  ) -> RateFinetuneResult:
    """Fine-tune ``model.token_encoder`` in place on ``pairs`` (see the module docstring).

    tables: the codec tables whose center and spread define the quantization steps. Only E_T's
    parameters change; the model is left in eval mode with its parameters' requires_grad restored.
    Seeds torch's global generator with ``config.seed`` (pair sampling uses it, as in training).
    """
    from imf.train.losses import PerceptualLossConfig, VGGPerceptualLoss

    if tables.dim != model.config.d_m:
        raise ConfigError(f"codec tables are for {tables.dim}-dim tokens, the model's are {model.config.d_m}")
    if pairs.config.size != model.config.resolution:
        raise ConfigError(f"pairs are {pairs.config.size}x{pairs.config.size}, the model needs "
                          f"{model.config.resolution}x{model.config.resolution}")
    device = model_device(model)
    torch.manual_seed(config.seed)
    quantizer = TokenQuantizer.from_spread(tables.center, tables.spread, config.quality)
    center = torch.from_numpy(quantizer.center).to(device)  # (d,)
    step = torch.from_numpy(quantizer.step).to(device)  # (d,)
    # Normalised tokens have std 1/step_scale; a Laplace of that std has scale std/sqrt(2).
    rate_model = LaplaceRateModel(tables.dim, 1.0 / (step_scale(config.quality) * math.sqrt(2.0))).to(device)
    perceptual = None
    if config.perceptual_weight > 0:
        perceptual = VGGPerceptualLoss(PerceptualLossConfig(pretrained=config.perceptual_pretrained)).to(device)

    was_trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    encoder_params = list(model.token_encoder.parameters())
    for p in encoder_params:
        p.requires_grad_(True)
    model.eval()  # frozen parts keep their batch-norm statistics; E_T has no batch norm or dropout
    opt = torch.optim.Adam([{"params": encoder_params, "lr": config.lr},
                            {"params": rate_model.parameters(), "lr": config.rate_lr}])
    loader = torch.utils.data.DataLoader(pairs, batch_size=config.batch_size, shuffle=True,
                                         drop_last=len(pairs) >= config.batch_size, num_workers=0)
    if len(loader) == 0:
        raise IMFError("rate fine-tuning: no training pairs")
    history: list[dict[str, float]] = []
    bar = progress_bar(total=config.max_steps, desc=f"rate fine-tuning (λ={config.lambda_rate:g}, q{config.quality})",
                       unit="step", enabled=progress)
    state = LoopState()

    def step_fn(batch: dict[str, Any]) -> dict[str, float]:
        x_r = batch["reference"].to(device)  # (B, 3, S, S)
        x_c = batch["current"].to(device)
        ref = model.prepare_reference(x_r)
        z = (model.encode_token(x_c) - center) / step  # (B, d) in quantization steps
        z_noisy = z + torch.rand_like(z) - 0.5
        x_hat = model.decode(center + z_noisy * step, ref)
        l1 = F.l1_loss(x_hat, x_c)
        perc = perceptual(x_hat, x_c) if perceptual is not None else l1.new_zeros(())
        bits = rate_model.bits(z_noisy, detach_params=True).mean()  # gradient to E_T only
        rate_fit = rate_model.bits(z_noisy.detach()).mean()  # gradient to the rate model only
        loss = config.l1_weight * l1 + config.perceptual_weight * perc + config.lambda_rate * bits
        if not torch.isfinite(loss + rate_fit):
            raise IMFError(f"rate fine-tuning diverged: non-finite loss at step {state.step}")
        opt.zero_grad(set_to_none=True)
        (loss + rate_fit).backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(encoder_params, config.grad_clip)
        opt.step()
        with torch.no_grad():
            bits_rounded = float(rate_model.bits(torch.round(z)).mean())
        return {"loss": loss.item(), "l1": l1.item(), "perceptual": perc.item(), "bits": bits.item(),
                "bits_rounded": bits_rounded}

    def after_step(metrics: dict[str, float], batch) -> None:
        record = {k: v for k, v in metrics.items() if k != "step"}
        history.append(record)
        bar.update(1)
        bar.set_postfix(l1=f"{record['l1']:.4f}", bits=f"{record['bits_rounded']:.1f}", refresh=False)
        if callback is not None:
            callback(state.step - 1, record)

    try:  # an epoch is a new shuffle of the pairs (the global generator, seeded above)
        run_steps(state, config.max_steps, lambda: loader, step_fn, after_step=after_step)
    finally:
        bar.close()
        for name, p in model.named_parameters():
            p.requires_grad_(was_trainable[name])
        model.eval()
    return RateFinetuneResult(
        steps=len(history), history=history,
        rate_model={"loc": rate_model.loc.detach().cpu().tolist(), "scale": rate_model.scale().detach().cpu().tolist()})


# ------------------------------------------------------------------------------- checkpoints
@dataclass
class FinetuneOutcome:
    """Result of :func:`finetune_checkpoint`. rate_before / rate_after: token bits per frame
    ({"static", "temporal"}) at the trained quality on the training frames, each with tables fitted
    there for the model of that moment (same quantizer when keep_quantizer)."""

    out: Path
    model_hash_before: str
    model_hash_after: str
    tables_source: str
    rate_before: dict[str, float]
    rate_after: dict[str, float]
    result: RateFinetuneResult


def training_frames(pairs: PairDataset) -> tuple[list[np.ndarray], list[str]]:
    """The frames ``pairs`` trains on, per clip: read-only (T_i, S, S, 3) uint8 memmaps of the frame cache
    (exactly each clip's split range, for fitting tables on the same frames), and the clips' file names."""
    from imf.data.frame_cache import frame_cache

    arrays, names = [], []
    for c, path in enumerate(pairs.clip_paths):
        start, stop = pairs.clip_range(c)
        arrays.append(np.load(frame_cache(path, pairs.config.size), mmap_mode="r")[start:stop])
        names.append(f"{path.name}[{start}:{stop}]")
    return arrays, names


def finetune_checkpoint(ckpt: str | os.PathLike, data: Sequence[str | os.PathLike], out: str | os.PathLike,
                        config: RateFinetuneConfig, *, device: str | torch.device = "cpu",
                        progress: bool = True) -> FinetuneOutcome:
    """Load ``ckpt``, fine-tune E_T on pairs of ``data``, save model + refitted codec tables into ``out``.

    Pairs and table fitting use the train split of ``config.data`` (the same frames). The base
    quantizer is the checkpoint's codec tables when they were fitted for this model, else tables
    fitted here on the training frames. ``out`` also gets ``rate_finetune.json`` (config, outcome,
    per-step history) and is registered for ``imf decode``. Nothing is written if anything fails first.
    """
    from imf.checkpoint import load_model, model_hash
    from imf.codec.registry import remember_checkpoint

    ckpt, out = Path(ckpt), Path(out)
    if out.exists() and out.resolve() == ckpt.resolve():
        raise ConfigError(f"--out {out} is the input checkpoint; write the fine-tuned model to a new folder")
    model = load_model(ckpt, map_location=device)
    hash_before = model_hash(model)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, size=model.config.resolution))
    pairs = PairDataset(list(data), config.data, split="train", progress=progress)
    frames, names = training_frames(pairs)

    base = load_tables(ckpt) if has_tables(ckpt) else None
    if base is not None and base.model_hash in ("", hash_before):
        tables_source = f"checkpoint tables {base.identity()[:16]}"
    else:
        base = fit_codec(model, frames, progress=progress)
        tables_source = "fitted on the training frames (the checkpoint had no tables for this model)"
    if config.quality not in base.qualities:
        raise ConfigError(f"quality {config.quality} is not among the codec tables' qualities {list(base.qualities)}")

    before = refit_tables(model, frames, base, qualities=[config.quality], progress=progress)
    result = finetune_rate(model, base, pairs, config, progress=progress)
    hash_after = model_hash(model)
    info = {"sources": names, "rate_finetune": {
        "lambda": config.lambda_rate, "quality": config.quality, "steps": result.steps,
        "base_model_hash": hash_before, "keep_quantizer": config.keep_quantizer}}
    if config.keep_quantizer:
        tables = refit_tables(model, frames, base, progress=progress, info=info)
    else:
        tables = fit_codec(model, frames, qualities=base.qualities, progress=progress)
        tables = dataclasses.replace(tables, info={**tables.info, **info})
    outcome = FinetuneOutcome(
        out=out, model_hash_before=hash_before, model_hash_after=hash_after, tables_source=tables_source,
        rate_before=before.info["bits_per_frame"][str(config.quality)],
        rate_after=tables.info["bits_per_frame"][str(config.quality)], result=result)

    model.save_pretrained(out)
    tables.save(out)
    summary = {"source_checkpoint": str(ckpt), "training_frames": names, "config": config.to_dict(),
               "tables_source": tables_source, "model_hash_before": hash_before, "model_hash_after": hash_after,
               "rate_before_bits_per_frame": outcome.rate_before, "rate_after_bits_per_frame": outcome.rate_after,
               "rate_model": result.rate_model, "final": {k: result.mean_of_last(k) for k in result.history[0]},
               "history": result.history}
    (out / FINETUNE_JSON).write_text(json.dumps(summary, indent=1) + "\n")
    remember_checkpoint(hash_after, out)
    return outcome
