"""The IMF training loop: pairs (x_r, x_c) of one clip, x̂_c = IMF(x_c, x_r),
L = w_l1·L1 + w_p·multi-scale VGG + w_gan·hinge GAN, Adam, EMA, AMP on GPU, DDP under torchrun.

Read top to bottom: ``Trainer.__init__`` builds everything, ``fit`` loops ``train_step``; validation,
image grids, checkpoints and the final EMA export happen on rank 0 only.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from imf.data.dataset import PairDataset
from imf.data.shard_pairs import ShardLoader, ShardPairDataset, ShardPairStream, shard_sources
from imf.data.stills import training_pairs
from imf.devices import resolve_device
from imf.errors import CheckpointError, IMFError
from imf.eval.metrics import psnr
from imf.models.discriminator import MultiScaleDiscriminator
from imf.models.imf import IMF
from imf.precision import resolve_precision
from imf.progress import progress_bar
from imf.train.checkpointing import load_latest, rng_state, save_checkpoint, set_rng_state
from imf.train.config import TrainConfig
from imf.train.distributed import (DistInfo, ResumableSampler, SeededItems, all_true, average_buffers,
                                   init_distributed, mean_across)
from imf.train.ema import EMA
from imf.train.loop import LoopState, due, resumable_loader, run_steps
from imf.train.losses import PerceptualLossConfig, VGGPerceptualLoss, d_hinge_loss, g_hinge_loss
from imf.train.schedule import lr_factor

log = logging.getLogger(__name__)


class TrainingDiverged(IMFError):
    """Too many non-finite losses in a row."""


def _precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32 (``imf.precision.resolve_precision``): on CPU, bf16 only where the
    CPU has fast bf16 (detected) and "auto" or "bf16" is asked."""
    return resolve_precision(requested, device)


class Trainer:
    def __init__(self, config: TrainConfig, data: list[str], run_dir: str | Path, resume: bool = False,
                 device: str | None = None, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        dev = resolve_device(device)
        self.dist: DistInfo = init_distributed(dev.type)
        if dev.type == "cuda":
            dev = torch.device("cuda", self.dist.local_rank)
        self.device = dev
        run = config.run
        if run.batch_size % self.dist.world_size:
            raise IMFError(f"run.batch_size {run.batch_size} is not divisible by the world size "
                           f"{self.dist.world_size}")
        self.local_batch = run.batch_size // self.dist.world_size
        self.amp_dtype = _precision(run.precision, dev)

        # models: the same seed on every rank gives the same initial weights (DDP also broadcasts them)
        torch.manual_seed(run.seed)
        self.generator = IMF(config.model).to(dev)
        self.discriminator = MultiScaleDiscriminator(config.model).to(dev)
        self.ema = EMA(self.generator, config.optim.ema_decay)
        self.perceptual = VGGPerceptualLoss(PerceptualLossConfig(
            scales=config.loss.perceptual_scales, layer_weights=config.loss.perceptual_layer_weights,
            taps=config.loss.perceptual_taps, pyramid=config.loss.perceptual_pyramid,
            pretrained=config.loss.perceptual_pretrained)).to(dev)
        o = config.optim
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=o.disc_lr, betas=o.betas,
                                      weight_decay=o.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        if self.dist.enabled:
            ids = [dev.index] if dev.type == "cuda" else None
            self.g_ddp = DDP(self.generator, device_ids=ids)
            self.d_ddp = DDP(self.discriminator, device_ids=ids)
        else:
            self.g_ddp, self.d_ddp = self.generator, self.discriminator
        self.g_forward = self.g_ddp
        if run.compile and dev.type == "cuda":
            self.g_forward = torch.compile(self.g_ddp)

        # data: pairs are seeded per (epoch, index), so a resumed run sees the same pairs. Rank 0 decodes the
        # clips into the frame cache first; the other ranks then read it. Shard folders (`imf data prepare`)
        # are streamed instead: each rank and worker reads its own shards (imf.data.shard_pairs).
        self.stream: ShardLoader | None = None
        if shard_sources(data):
            self.stream = self._shard_data(data, progress)
        else:
            if self.dist.enabled and not self.dist.is_main:
                dist.barrier()
            self.train_set = training_pairs(data, config.data, progress=progress and self.dist.is_main)
            try:
                self.val_set = PairDataset(data, config.data, split="val", augment=False, progress=False)
            except IMFError as e:
                log.warning("no validation split (%s): validation is skipped", e)
                self.val_set = None
            if self.dist.enabled and self.dist.is_main:
                dist.barrier()
            if len(self.train_set) < run.batch_size:
                raise IMFError(f"the training split has {len(self.train_set)} pairs, fewer than one global batch "
                               f"({run.batch_size})")
            self.sampler = ResumableSampler(len(self.train_set), self.dist, run.seed)
        self.state = LoopState()
        self.nonfinite_in_a_row = 0
        self.history: list[dict[str, float]] = []

        if resume:  # before anything is written: a refused resume leaves the run as it was
            self._load(load_latest(self.run_dir, map_location=dev))
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        self.writer = None
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _shard_data(self, data: list[str], progress: bool) -> ShardLoader:
        """The stream of training pairs over shard folders, and their val/test clips as the validation split."""
        cfg, run = self.config.data, self.config.run
        if cfg.stills:
            raise IMFError("data.stills cannot be mixed into shard folders (yet): train on clips, or leave it out")
        self.train_set = ShardPairStream(data, cfg, "train", seed=run.seed, batch_size=self.local_batch,
                                         num_workers=run.num_workers, rank=self.dist.rank,
                                         world_size=self.dist.world_size)
        self.sampler = None
        try:
            self.val_set = ShardPairDataset(data, cfg, split="val", augment=False)
        except IMFError as e:
            log.warning("no validation split (%s): validation is skipped", e)
            self.val_set = None
        if progress and self.dist.is_main:
            log.info("streaming %s", self.train_set)
        return ShardLoader(self.train_set, pin_memory=self.device.type == "cuda")

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.state.state_dict(), **({"data": self.stream.state_dict()} if self.stream else {}),
                "world_size": self.dist.world_size,
                "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "ema": self.ema.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_state(),
                "nonfinite_in_a_row": self.nonfinite_in_a_row, "config": json.dumps(self.config.to_dict())}

    def _load(self, state: dict[str, Any]) -> None:
        try:
            self._load_state(state)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            if isinstance(e, IMFError):
                raise
            raise CheckpointError(f"--resume: the latest checkpoint in {self.run_dir} is not a training state this "
                                  f"imf can continue ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None

    def _load_state(self, state: dict[str, Any]) -> None:
        if json.loads(state["config"])["model"] != self.config.model.to_dict():
            raise IMFError("--resume: the run's checkpoint was made with another model config")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.state.load_state_dict(state)
        if int(state["world_size"]) != self.dist.world_size:
            log.warning("resuming on %d rank(s) a run saved on %d: the data position restarts the epoch",
                        self.dist.world_size, int(state["world_size"]))
            self.state.batch_in_epoch = 0
        if self.stream is not None:  # the shard stream's position (it warns and starts over if the layout changed)
            self.stream.load_state_dict(state.get("data", {}))
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        set_rng_state(state["rng"])
        if self.dist.is_main:
            log.info("resumed from step %d", self.step)

    # ---- one step ------------------------------------------------------------------------------------
    def _set_lr(self) -> float:
        o, run = self.config.optim, self.config.run
        f = lr_factor(self.step, run.max_steps, o.warmup_steps, o.decay, o.min_lr_ratio)
        for g in self.opt_g.param_groups:
            g["lr"] = o.lr * f
        for g in self.opt_d.param_groups:
            g["lr"] = o.disc_lr * f
        return o.lr * f

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float] | None:
        """One generator (and, once the GAN is on, one discriminator) update; None if the step was skipped."""
        cfg = self.config
        x_r = batch["reference"].to(self.device, non_blocking=True)
        x_c = batch["current"].to(self.device, non_blocking=True)
        use_gan = cfg.loss.gan > 0 and self.step >= cfg.loss.gan_start_step
        lr = self._set_lr()
        self.generator.train()

        with self._autocast():
            x_hat = self.g_forward(x_c, x_r)
        x_hat32 = x_hat.float()
        l1 = (x_hat32 - x_c).abs().mean()
        perc = self.perceptual(x_hat32, x_c)
        total = cfg.loss.l1 * l1 + cfg.loss.perceptual * perc
        g_gan = torch.zeros((), device=self.device)
        if use_gan:
            # the unwrapped D: its gradients here are not wanted (they are zeroed before D's own step)
            self.discriminator.requires_grad_(False)
            with self._autocast():
                g_gan = g_hinge_loss([l.float() for l in self.discriminator(x_hat)])
            self.discriminator.requires_grad_(True)
            total = total + cfg.loss.gan * g_gan

        finite = all_true(bool(torch.isfinite(total)), self.dist, self.device)
        if not finite:
            self.nonfinite_in_a_row += 1
            log.warning("step %d: non-finite loss (%s), step skipped (%d in a row)",
                        self.step, float(total.detach()), self.nonfinite_in_a_row)
            if self.nonfinite_in_a_row >= cfg.run.max_nonfinite_steps:
                raise TrainingDiverged(f"{self.nonfinite_in_a_row} non-finite losses in a row at step {self.step}: "
                                       f"lower the learning rate or use fp32 (run.precision)")
            self.opt_g.zero_grad(set_to_none=True)
            return None
        self.nonfinite_in_a_row = 0

        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.opt_g)
        g_norm = self._clip(self.generator)
        self.scaler.step(self.opt_g)

        d_loss = torch.zeros((), device=self.device)
        if use_gan:
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast():
                real = self.d_ddp(x_c)
                fake = self.d_ddp(x_hat.detach())
                d_loss = d_hinge_loss([r.float() for r in real], [f.float() for f in fake])
            self.scaler.scale(d_loss).backward()
            self.scaler.unscale_(self.opt_d)
            self._clip(self.discriminator)
            self.scaler.step(self.opt_d)
        self.scaler.update()
        average_buffers(self.generator, self.dist)

        ema_decay = 0.0 if self.step < cfg.optim.ema_start_step else None
        self.ema.update(self.generator, ema_decay)
        losses = torch.stack([total.detach(), l1.detach(), perc.detach(), g_gan.detach(), d_loss.detach()])
        losses = mean_across(losses, self.dist).tolist()
        return {"loss": losses[0], "l1": losses[1], "perceptual": losses[2], "g_gan": losses[3],
                "d_loss": losses[4], "grad_norm": float(g_norm), "lr": lr}

    def _clip(self, model: torch.nn.Module) -> float:
        clip = self.config.optim.grad_clip
        params = [p for p in model.parameters() if p.grad is not None]
        if clip > 0:
            return float(torch.nn.utils.clip_grad_norm_(params, clip))
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))

    # ---- validation and images -----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """L1 and PSNR of the EMA generator on the first ``val_batches`` batches of the validation split."""
        if self.val_set is None:
            return None
        model = self.ema.model.eval()
        seeded = SeededItems(self.val_set, seed=12345)
        n = min(len(seeded), self.config.run.val_batches * self.local_batch)
        l1s, psnrs = [], []
        for start in range(0, n, self.local_batch):
            items = [seeded[(0, i)] for i in range(start, min(n, start + self.local_batch))]
            x_r = torch.stack([it["reference"] for it in items]).to(self.device)
            x_c = torch.stack([it["current"] for it in items]).to(self.device)
            with self._autocast():
                x_hat = model(x_c, x_r).float()
            l1s.append((x_hat - x_c).abs().flatten(1).mean(1))
            psnrs.append(psnr(x_hat, x_c, mse_floor=1e-10))
        return {"val_l1": float(torch.cat(l1s).mean()), "val_psnr": float(torch.cat(psnrs).mean())}

    @torch.no_grad()
    def image_grid(self, batch: dict[str, torch.Tensor], n: int = 4) -> torch.Tensor:
        """(3, n·S, 3·S): rows of reference | current | reconstruction (EMA generator)."""
        x_r, x_c = batch["reference"][:n].to(self.device), batch["current"][:n].to(self.device)
        x_hat = self.ema.model.eval()(x_c, x_r).float()
        rows = torch.cat([x_r, x_c, x_hat.clamp(0, 1)], dim=3)  # (n, 3, S, 3S)
        return torch.cat(list(rows), dim=1).cpu()  # (3, n·S, 3S)

    # ---- the loop ------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Optimizer steps taken (the run's position is ``self.state``)."""
        return self.state.step

    def _loader(self) -> DataLoader | ShardLoader:
        if self.stream is not None:
            return self.stream
        return resumable_loader(self.train_set, self.sampler, self.state, self.local_batch, self.config.run.seed,
                                num_workers=self.config.run.num_workers, pin_memory=self.device.type == "cuda")

    def save(self) -> Path | None:
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.run_dir, self.step, self.state_dict(), self.config.run.keep_checkpoints)

    def fit(self, max_steps: int | None = None, callback=None, max_minutes: float | None = None) -> dict[str, Any]:
        """Train until ``max_steps`` (default: run.max_steps), until ``callback(trainer)``, called after
        every step on every rank, returns True, or until ``max_minutes`` of wall clock have passed since
        this call (checked after every step; under DDP every rank stops at the same step, the first step
        after which any rank is out of time). However it stops, it ends the same way: a checkpoint, a
        validation and the EMA export to RUN/model. The learning-rate schedule still follows max_steps.
        Returns a summary (``stopped_by``: "max_steps", "callback" or "max_minutes"; ``steps_run`` and
        ``loop_seconds``: the steps of this call and the loop's wall clock, without the final checkpoint,
        validation and export)."""
        run = self.config.run
        max_steps = run.max_steps if max_steps is None else max_steps
        if max_minutes is not None and not max_minutes > 0:
            raise IMFError(f"max_minutes must be > 0, got {max_minutes}")
        loop_start, first_step = time.monotonic(), self.step
        deadline = None if max_minutes is None else loop_start + 60.0 * max_minutes
        bar = progress_bar(total=max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                           enabled=self.progress and self.dist.is_main)
        rate = {"t": time.perf_counter(), "samples": 0}
        last: dict[str, Any] = {}

        def after_step(metrics: dict[str, float], batch) -> None:
            last["batch"] = batch
            rate["samples"] += run.batch_size
            self.history.append(metrics)
            if self.dist.is_main:
                self._log(metrics, bar)
                if due(self.step, run.log_every):
                    now = time.perf_counter()
                    sps = rate["samples"] / max(now - rate["t"], 1e-9)
                    rate.update(t=now, samples=0)
                    bar.set_postfix(loss=f"{metrics['loss']:.3f}", l1=f"{metrics['l1']:.4f}", samples_s=f"{sps:.1f}")
                    self.writer.add_scalar("train/samples_per_s", sps, self.step)
                if due(self.step, run.image_every):
                    self.writer.add_image("reference|current|reconstruction", self.image_grid(batch), self.step)
                if due(self.step, run.val_every):
                    self._validate_and_log()
                if due(self.step, run.checkpoint_every):
                    self.save()
            bar.update(1)

        def should_stop() -> str | None:
            if callback is not None and callback(self):
                return "callback"
            if deadline is not None and not all_true(time.monotonic() < deadline, self.dist, self.device):
                if self.dist.is_main:
                    log.info("--max-minutes %g reached at step %d: saving and exporting", max_minutes, self.step)
                return "max_minutes"
            return None

        stopped_by = run_steps(self.state, max_steps, self._loader, self.train_step, after_step=after_step,
                               should_stop=should_stop)
        bar.close()
        summary: dict[str, Any] = {"step": self.step, "stopped_by": stopped_by, "steps_run": self.step - first_step,
                                   "loop_seconds": round(time.monotonic() - loop_start, 2)}
        if self.dist.is_main:
            self.save()
            val = self._validate_and_log()
            if val:
                summary.update(val)
            if "batch" in last:
                self.writer.add_image("reference|current|reconstruction", self.image_grid(last["batch"]), self.step)
            self.ema.model.save_pretrained(self.run_dir / "model")
            self.writer.flush()
            summary["model"] = str(self.run_dir / "model")
        return summary

    def _log(self, metrics: dict[str, float], bar) -> None:
        for k, v in metrics.items():
            if k != "step" and math.isfinite(v):
                self.writer.add_scalar(f"train/{k}", v, self.step)

    def _validate_and_log(self) -> dict[str, float] | None:
        val = self.validate()
        if val:
            for k, v in val.items():
                self.writer.add_scalar(f"val/{k[4:]}", v, self.step)
            with open(self.run_dir / "validation.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, **val}) + "\n")
        return val

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
