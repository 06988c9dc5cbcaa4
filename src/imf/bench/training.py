"""Training throughput: ``Trainer.train_step`` (the real step: generator forward, L1 + VGG perceptual +
hinge GAN, both Adam updates, EMA) on synthetic batches, in samples per second.

The Trainer is built on a throw-away clip of random frames (it needs a dataset to start; the timed steps
use their own random batches), with its frame cache and run folder in a temporary directory. The GAN is
on from step 0, so every step pays for the discriminator too. The VGG of the perceptual loss has random
weights (``perceptual_pretrained=False``): the same network and cost, without reading ImageNet weights.
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from imf.bench.timing import time_call


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


def training_throughput(preset: str, batch: int, device: torch.device, repeats: int = 3, warmup: int = 1,
                        precision: str = "fp32") -> dict:
    """Samples/s of ``Trainer.train_step`` at ``batch`` for ``preset``; ``precision`` as in run.precision
    ("auto" gives bf16/fp16 autocast on CUDA; CPU always runs fp32)."""
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
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            timing = time_call(lambda: trainer.train_step(batch_data), device, repeats=repeats, warmup=warmup)
            out = {"preset": preset, "batch": batch, "device": str(device),
                   "precision": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "fp32",
                   **timing.to_dict(), "samples_per_s": batch / timing.median_s,
                   "step": "Trainer.train_step: G (L1 + VGG + GAN) and D updates, EMA; random-weight VGG"}
            if device.type == "cuda":
                out["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            return out
        finally:
            trainer.close()
