"""Training the token editor ψ on a frozen IMF (paper §3.4).

Pairs (x_s, x_t) are two frames of one clip (``PairDataset``: reference = source, current = target, no
flips or colour jitter). From the source token t_s and the target frame's condition h_t, ψ predicts t̃;
the loss (``imf.train.editor_config``) compares t̃ with the target token t_t = E_T(x_t) and the frame
decoded from t̃ through the frozen IMF with x_t. Only ψ is trained: the IMF's parameters have
requires_grad False and it stays in eval mode (its weights are compared byte for byte in the tests).

Conditions are measured once per clip frame and cached (``imf.editing.clip_conditions``); pairs whose
target frame has no condition (no face found) are left out of the batch. ψ's condition normalisation
(μ_h, σ_h) comes from the training split's conditions.

One process (ψ is small; the frozen IMF's forward and backward through D_F dominate). Checkpoints in
``RUN/checkpoints`` hold ψ, the optimiser, the data position and RNG states (``imf.train.checkpointing``),
so ``--resume`` continues the same run; the final ψ goes to ``RUN/editor``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

from imf.checkpoint import load_model, model_hash
from imf.data.dataset import DataConfig, PairDataset
from imf.data.frame_cache import load_frames
from imf.devices import resolve_device
from imf.editing.clip_conditions import clip_file_conditions, measure_clip
from imf.editing.measures import LandmarkConditions
from imf.errors import CheckpointError, IMFError, InputError
from imf.models.editor import EditorConfig, TokenEditor
from imf.progress import progress_bar
from imf.train.checkpointing import load_latest, rng_state, save_checkpoint, set_rng_state
from imf.train.distributed import DistInfo, ResumableSampler, SeededItems
from imf.train.editor_config import EditorTrainConfig
from imf.train.loop import LoopState, due, resumable_loader, run_steps
from imf.train.losses import PerceptualLossConfig, VGGPerceptualLoss

log = logging.getLogger(__name__)


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """requires_grad False on every parameter and eval mode (BatchNorm statistics stay as trained)."""
    model.requires_grad_(False)
    return model.eval()


class ClipConditions:
    """Per-clip condition arrays (N_clip, D) float32, computed once per clip path."""

    def __init__(self, config: EditorTrainConfig, frames_size: int, progress: bool = True):
        """frames_size: the model resolution, whose frame cache tells a clip's frame count (file conditions)."""
        self.config, self.frames_size, self.progress = config, frames_size, progress
        self._by_path: dict[Path, np.ndarray] = {}
        self._extractor = LandmarkConditions(config.conditions) if config.condition_source == "landmarks" else None

    def __call__(self, path: Path) -> np.ndarray:
        key = Path(path).resolve()
        if key not in self._by_path:
            cfg = self.config
            if self._extractor is not None:
                values = measure_clip(path, self._extractor, cfg.analysis_size, self.progress)
            else:
                values = clip_file_conditions(path, cfg.conditions, len(load_frames(path, self.frames_size)))
            self._by_path[key] = values
        return self._by_path[key]

    def for_dataset(self, dataset: PairDataset) -> list[np.ndarray]:
        return [self(p) for p in dataset.clip_paths]


def _gather(tables: list[np.ndarray], clips: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(B, D) float32 conditions of frames ``frames`` of clips ``clips`` (nan rows where none)."""
    return torch.from_numpy(np.stack([tables[int(c)][int(i)] for c, i in zip(clips, frames)]))


class EditorTrainer:
    def __init__(self, config: EditorTrainConfig, ckpt: str | Path, data: list[str], run_dir: str | Path,
                 resume: bool = False, device: str | None = None, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.device = resolve_device(device)
        torch.manual_seed(config.seed)

        # the frozen IMF
        self.model = freeze(load_model(ckpt, map_location=self.device))
        self.model_hash = model_hash(self.model)

        # data: pairs of one clip at the model's resolution, no flips (they would change yaw and roll)
        data_cfg = DataConfig(size=self.model.config.resolution, min_distance=config.min_distance,
                              max_distance=config.max_distance, split_by=config.split_by,
                              val_fraction=config.val_fraction, hflip_prob=0.0)
        self.train_set = PairDataset(data, data_cfg, split="train", augment=False, progress=progress)
        try:
            self.val_set: PairDataset | None = PairDataset(data, data_cfg, split="val", augment=False, progress=False)
        except IMFError as e:
            log.warning("no validation split (%s): validation is skipped", e)
            self.val_set = None
        conditions = ClipConditions(config, self.model.config.resolution, progress)
        self.train_conditions = conditions.for_dataset(self.train_set)
        self.val_conditions = conditions.for_dataset(self.val_set) if self.val_set is not None else []
        train_rows = np.concatenate([t[slice(*self.train_set.clip_range(i))]
                                     for i, t in enumerate(self.train_conditions)])
        valid = train_rows[np.all(np.isfinite(train_rows), axis=1)]
        if len(valid) < 2:
            raise InputError(f"only {len(valid)} training frame(s) have a condition ({', '.join(config.conditions)}): "
                             f"with landmarks, check that the clips show one face, large and frontal enough")
        log.info("%d of %d training frames have a condition", len(valid), len(train_rows))
        if len(self.train_set) < config.batch_size:
            raise InputError(f"the training split has {len(self.train_set)} pairs, fewer than one batch "
                             f"({config.batch_size})")

        # ψ
        self.editor = TokenEditor(EditorConfig(
            d_m=self.model.config.d_m, cond_dim=len(config.conditions), condition_names=config.conditions,
            condition_source=config.condition_source, hidden=config.hidden, layers=config.layers,
            residual=config.residual)).to(self.device)
        self.editor.set_condition_stats(torch.from_numpy(valid.mean(0)), torch.from_numpy(valid.std(0)))
        self.opt = torch.optim.Adam(self.editor.parameters(), lr=config.lr, betas=config.betas,
                                    weight_decay=config.weight_decay)
        self.perceptual = None
        if config.perceptual > 0:
            self.perceptual = VGGPerceptualLoss(PerceptualLossConfig(
                scales=config.perceptual_scales, pretrained=config.perceptual_pretrained)).to(self.device)

        self.sampler = ResumableSampler(len(self.train_set), DistInfo(), config.seed)
        self.state = LoopState()
        self.history: list[dict[str, float]] = []
        if resume:  # before anything is written: a refused resume leaves the run as it was
            self._load(load_latest(self.run_dir, map_location=self.device))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "editor_train.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    # ---- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.state.state_dict(),
                "editor": self.editor.state_dict(), "opt": self.opt.state_dict(), "rng": rng_state(),
                "config": json.dumps(self.config.to_dict()), "model_hash": self.model_hash}

    def _load(self, state: dict[str, Any]) -> None:
        if "editor" not in state:
            raise CheckpointError(f"--resume: the checkpoints in {self.run_dir} are not editor-training checkpoints")
        if state["model_hash"] != self.model_hash:
            raise CheckpointError("--resume: the run was trained on another IMF checkpoint (model hash differs)")
        saved = json.loads(state["config"])
        for key in ("conditions", "condition_source", "hidden", "layers", "residual"):
            if saved[key] != self.config.to_dict()[key]:
                raise CheckpointError(f"--resume: the run was made with {key}={saved[key]!r}, "
                                      f"the config now says {self.config.to_dict()[key]!r}")
        self.editor.load_state_dict(state["editor"])
        self.opt.load_state_dict(state["opt"])
        self.state.load_state_dict(state)
        set_rng_state(state["rng"])
        log.info("resumed from step %d", self.step)

    # ---- one step ------------------------------------------------------------------------------------
    def _losses(self, batch: dict[str, Any], tables: list[np.ndarray]) -> dict[str, torch.Tensor] | None:
        """Loss terms on the pairs of ``batch`` whose target has a condition; None if none has."""
        cfg = self.config
        h = _gather(tables, batch["clip"], batch["cur_index"])  # (B, D)
        keep = torch.isfinite(h).all(dim=1)
        if not bool(keep.any()):
            return None
        h = h[keep].to(self.device)
        x_s = batch["reference"][keep].to(self.device)
        x_t = batch["current"][keep].to(self.device)
        with torch.no_grad():
            ref = self.model.prepare_reference(x_s)  # ref.t_r = E_T(x_s) = t_s
            t_t = self.model.encode_token(x_t)
        t_edit = self.editor(ref.t_r, h)  # (b, d_m)
        token = F.mse_loss(t_edit, t_t) if cfg.token_loss == "l2" else F.l1_loss(t_edit, t_t)
        zero = torch.zeros((), device=self.device)
        pixel = perc = zero
        if cfg.pixel > 0 or cfg.perceptual > 0:
            x_hat = self.model.decode(t_edit, ref)  # gradients reach t̃ through the frozen IMF
            pixel = F.l1_loss(x_hat, x_t) if cfg.pixel > 0 else zero
            perc = self.perceptual(x_hat, x_t) if self.perceptual is not None else zero
        total = cfg.token * token + cfg.pixel * pixel + cfg.perceptual * perc
        return {"loss": total, "token": token, "pixel": pixel, "perceptual": perc,
                "pairs": torch.tensor(float(len(h)))}

    def train_step(self, batch: dict[str, Any]) -> dict[str, float] | None:
        self.editor.train()
        terms = self._losses(batch, self.train_conditions)
        if terms is None:
            return None
        if not torch.isfinite(terms["loss"]):
            log.warning("step %d: non-finite loss, step skipped", self.step)
            return None
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        clip = self.config.grad_clip
        params = [p for p in self.editor.parameters() if p.grad is not None]
        norm = (torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0
                else torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        self.opt.step()
        return {k: float(v.detach()) for k, v in terms.items()} | {"grad_norm": float(norm)}

    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """Mean loss terms of ψ on the first ``val_batches`` batches of the validation split (fixed pairs)."""
        if self.val_set is None or self.config.val_batches == 0:
            return None
        self.editor.eval()
        seeded = SeededItems(self.val_set, seed=12345)
        bs = self.config.batch_size
        n = min(len(seeded), self.config.val_batches * bs)
        sums: dict[str, float] = {}
        weight = 0.0
        for start in range(0, n, bs):
            items = [seeded[(0, i)] for i in range(start, min(n, start + bs))]
            batch = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
            terms = self._losses(batch, self.val_conditions)
            if terms is None:
                continue
            b = float(terms["pairs"])
            for k, v in terms.items():
                if k != "pairs":
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * b
            weight += b
        if weight == 0:
            return None
        return {f"val_{k}": v / weight for k, v in sums.items()}

    # ---- the loop ------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.state.step

    def _loader(self) -> DataLoader:
        return resumable_loader(self.train_set, self.sampler, self.state, self.config.batch_size, self.config.seed,
                                num_workers=self.config.num_workers)

    def save(self) -> Path:
        return save_checkpoint(self.run_dir, self.step, self.state_dict(), self.config.keep_checkpoints)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "editor_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def fit(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train until ``max_steps`` (default: config.max_steps); save a checkpoint and ``RUN/editor``."""
        cfg = self.config
        max_steps = cfg.max_steps if max_steps is None else max_steps
        bar = progress_bar(total=max_steps, initial=self.step, desc="train-editor", unit="step", dynamic_ncols=True,
                           enabled=self.progress)

        def after_step(metrics: dict[str, float], batch) -> None:
            self.history.append(metrics)
            bar.update(1)
            if due(self.step, cfg.log_every):
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", token=f"{metrics['token']:.4f}")
                self._log(metrics)
            if due(self.step, cfg.val_every):
                val = self.validate()
                if val:
                    self._log({"step": self.step, **val})
            if due(self.step, cfg.checkpoint_every):
                self.save()

        run_steps(self.state, max_steps, self._loader, self.train_step, after_step=after_step)
        bar.close()
        self.save()
        summary: dict[str, Any] = {"step": self.step}
        if self.history:
            last = self.history[-min(len(self.history), cfg.log_every):]
            summary.update({f"train_{k}": float(np.mean([m[k] for m in last]))
                            for k in ("loss", "token", "pixel", "perceptual")})
        val = self.validate()
        if val:
            summary.update(val)
            self._log({"step": self.step, **val})
        self.editor.save_pretrained(self.run_dir / "editor", extra={"model_hash": self.model_hash})
        summary["editor"] = str(self.run_dir / "editor")
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in summary.items()}
