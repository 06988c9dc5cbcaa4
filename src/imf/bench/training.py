"""Training throughput: ``Trainer.train_step`` (the real step: generator forward, L1 + VGG perceptual +
hinge GAN, both Adam updates, EMA) on synthetic batches, in samples per second.

The Trainer is built on a throw-away clip of random frames (it needs a dataset to start; the timed steps
use their own random batches), with its frame cache and run folder in a temporary directory. The GAN is
on from step 0, so every step pays for the discriminator too. The VGG of the perceptual loss has random
weights (``perceptual_pretrained=False``): the same network and cost, without reading ImageNet weights.
``training_throughputs`` times several precisions (fp32 and bf16 autocast) of one preset in alternation.
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import torch

from imf.bench.timing import time_call, time_interleaved


@contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _synthetic_clip(folder: Path, frames: int, size: int) -> Path:
    """A folder of ``frames`` random PNG frames (size × size)."""
    from PIL import Image

    clip = folder / "clip"
    clip.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(frames):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(clip / f"{i:04d}.png")
    return clip


SHORT_DTYPE = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
STEP = "Trainer.train_step: G (L1 + VGG + GAN) and D updates, EMA; random-weight VGG"


@contextmanager
def _bench_trainer(preset: str, batch: int, device: torch.device, precision: str):
    """A Trainer for ``preset`` at ``batch`` in ``precision`` (run.precision) on a throw-away clip, and one
    synthetic batch for its steps."""
    from imf.train.config import TrainConfig
    from imf.train.trainer import Trainer

    config = TrainConfig.from_dict({
        "model": {"preset": preset},
        "data": {"split_by": "frames", "val_fraction": 0.2},
        "loss": {"gan_start_step": 0, "perceptual_pretrained": False},
        "run": {"batch_size": batch, "num_workers": 0, "precision": precision, "compile": False},
    })
    size = config.model.resolution
    with tempfile.TemporaryDirectory(prefix="imf-bench-train-") as tmp, _env("IMF_CACHE", str(Path(tmp) / "cache")):
        clip = _synthetic_clip(Path(tmp), math.ceil(batch / 0.8) + 4, size)
        trainer = Trainer(config, [str(clip)], Path(tmp) / "run", device=str(device), progress=False)
        try:
            gen = torch.Generator().manual_seed(0)
            batch_data = {"reference": torch.rand(batch, 3, size, size, generator=gen),
                          "current": torch.rand(batch, 3, size, size, generator=gen)}
            yield trainer, batch_data
        finally:
            trainer.close()


def _row(preset: str, batch: int, device: torch.device, precision: str, trainer, timing) -> dict:
    return {"preset": preset, "batch": batch, "device": str(device),
            "precision": SHORT_DTYPE[trainer.amp_dtype], "requested_precision": precision,
            **timing.to_dict(), "samples_per_s": batch / timing.median_s, "step": STEP}


def training_throughput(preset: str, batch: int, device: torch.device, repeats: int = 3, warmup: int = 1,
                        precision: str = "fp32") -> dict:
    """Samples/s of ``Trainer.train_step`` at ``batch`` for ``preset``; ``precision`` as in run.precision
    (``imf.precision.resolve_precision``): "auto" / "bf16" give bf16 autocast on a GPU with bf16 and on a CPU
    with fast bf16 (AVX512-BF16 / AMX, detected), fp32 on other CPUs. The row's ``precision`` is what ran
    ("fp32", "bf16", "fp16"), ``requested_precision`` what was asked for; on CUDA also the peak memory."""
    with _bench_trainer(preset, batch, device, precision) as (trainer, batch_data):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timing = time_call(lambda: trainer.train_step(batch_data), device, repeats=repeats, warmup=warmup)
        out = _row(preset, batch, device, precision, trainer, timing)
        if device.type == "cuda":
            out["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        return out


def training_throughputs(preset: str, batch: int, device: torch.device, precisions: tuple[str, ...],
                         repeats: int = 3, warmup: int = 1) -> list[dict]:
    """``training_throughput`` in each of ``precisions``, the steps of one Trainer per precision timed in
    alternation (fp32, bf16, fp32, bf16, ...) so that other load on a shared machine hits all alike. Rows after
    the first carry ``speedup_vs_<first>`` (samples/s ratio to the first precision's row)."""
    with ExitStack() as stack:
        trainers = {p: stack.enter_context(_bench_trainer(preset, batch, device, p)) for p in precisions}
        timings = time_interleaved({p: (lambda t=t, d=d: t.train_step(d)) for p, (t, d) in trainers.items()},
                                   device, repeats=repeats, warmup=warmup)
        rows = [_row(preset, batch, device, p, trainers[p][0], timings[p]) for p in precisions]
    for row in rows[1:]:
        row[f"speedup_vs_{rows[0]['precision']}"] = row["samples_per_s"] / rows[0]["samples_per_s"]
    return rows
