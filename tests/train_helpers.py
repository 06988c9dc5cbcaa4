"""Shared pieces of the training tests: a synthetic clip and a fast tiny config."""

from __future__ import annotations

import numpy as np

from imf.data.video import VideoWriter
from imf.train.config import TrainConfig


def moving_blob_clip(path, n: int = 24, size: int = 64, seed: int = 0) -> None:
    """A bright disc moving over a smooth colour-gradient background: uint8 frames written as H.264."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    tint = rng.random(3) * 40
    background = np.stack([40 + 120 * xx / size + tint[0], 60 + 100 * yy / size + tint[1],
                           np.full((size, size), 90.0) + tint[2]], axis=-1).astype(np.float32)
    with VideoWriter(path, 25, size, size, crf=10, preset="veryfast") as writer:
        for i in range(n):
            cx, cy = 16 + i * 32 / n, 24 + 10 * np.sin(i / 4)
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < 120
            frame = background.copy()
            frame[disc] = (230, 180, 90)
            writer.write(frame.astype(np.uint8))


def fast_config(**run) -> TrainConfig:
    """tiny-64 with a random VGG (no weight fetching), the GAN on from the first step, no workers."""
    base = {
        "model": {"preset": "tiny-64"},
        "data": {"split_by": "frames", "val_fraction": 0.25, "hflip_prob": 0.5},
        "loss": {"gan_start_step": 0, "perceptual_pretrained": False, "perceptual_scales": [1.0, 0.5]},
        "optim": {"warmup_steps": 2, "ema_decay": 0.9},
        "run": {"batch_size": 4, "max_steps": 4, "num_workers": 0, "val_batches": 1, "log_every": 1,
                "image_every": 2, "val_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2, **run},
    }
    return TrainConfig.from_dict(base)


def ddp_worker(rank: int, world_size: int, port: int, clip: str, run_dir: str, out_dir: str) -> None:
    """One rank of a 2-process gloo run: train 2 steps, then dump this rank's weights."""
    import os

    import torch
    import torch.distributed as dist

    from imf.train.trainer import Trainer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(fast_config(batch_size=4), [clip], run_dir, progress=False, device="cpu")
    trainer.fit(max_steps=2)
    state = {**{f"g.{k}": v for k, v in trainer.generator.state_dict().items()},
             **{f"d.{k}": v for k, v in trainer.discriminator.state_dict().items()}}
    torch.save({"state": state, "local_batch": trainer.local_batch, "steps": [h["step"] for h in trainer.history]},
               f"{out_dir}/rank{rank}.pt")
    trainer.close()
    dist.destroy_process_group()
