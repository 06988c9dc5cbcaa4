"""DistributedDataParallel set-up (torchrun's environment) and a resumable distributed sampler.

The same command runs on one process or under ``torchrun --nproc_per_node=K`` (and multi-node): the
environment variables RANK / WORLD_SIZE / LOCAL_RANK decide. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank only if ``flag`` is true on every rank (so all ranks take the same branch)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0)


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / info.world_size


def average_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks, so every rank holds the
    same model after a step: DDP keeps parameters in sync, but each rank updates its running statistics
    from its own data (and SyncBatchNorm needs a GPU)."""
    if not info.enabled:
        return
    with torch.no_grad():
        for b in module.buffers():
            if b.is_floating_point():
                dist.all_reduce(b)
                b.div_(info.world_size)


class ResumableSampler(Sampler):
    """Yields ``(epoch, index)`` for this rank: a permutation of the dataset fixed by (seed, epoch),
    padded to a multiple of the world size and strided by rank (as DistributedSampler does), starting
    at ``start`` (items of this rank already consumed in this epoch, for resuming mid-epoch)."""

    def __init__(self, length: int, info: DistInfo, seed: int, shuffle: bool = True):
        self.length, self.info, self.seed, self.shuffle = length, info, seed, shuffle
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        per_rank = -(-self.length // self.info.world_size)
        order += order[: per_rank * self.info.world_size - len(order)]
        return order[self.info.rank::self.info.world_size]

    def __len__(self) -> int:
        return -(-self.length // self.info.world_size) - self.start

    def __iter__(self):
        for idx in self._indices()[self.start:]:
            yield (self.epoch, idx)


class SeededItems(torch.utils.data.Dataset):
    """Wraps a dataset whose items draw from torch's global RNG (random pair distance, augmentation) so
    that item ``(epoch, index)`` is always the same: the draw is seeded by (seed, epoch, index), whatever
    the worker count or a resume in the middle of an epoch."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019 + index)
            return self.dataset[index]
