"""The one resumable training loop, shared by IMF (``train.trainer``), the token editor ψ (``train.editor``)
and rate-aware fine-tuning of E_T (``train.rate``).

A run's data position is (epoch, batch in epoch) over a ``ResumableSampler``: a loader made at that
position yields the rest of the epoch, so a run resumed from a checkpoint sees exactly the batches it
would have seen. A step whose ``step_fn`` returns None (a skipped batch: no usable pair, a non-finite loss)
advances the data position but not the step count. The loader may also be an endless stream that keeps
its own position (``imf.data.shard_pairs.ShardLoader``, for shard folders): it has no length, and no
batch is drawn past the last step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from imf.train.distributed import ResumableSampler, SeededItems

Metrics = dict[str, float]


@dataclass
class LoopState:
    """Where a run is: optimizer steps taken, and the data position (epoch, batches of it consumed)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])


def resumable_loader(dataset, sampler: ResumableSampler, state: LoopState, batch_size: int, seed: int, *,
                     num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """The rest of the current epoch from ``state``'s data position (items seeded by (seed, epoch, index))."""
    sampler.set_position(state.epoch, state.batch_in_epoch * batch_size)
    return DataLoader(SeededItems(dataset, seed), batch_size=batch_size, sampler=sampler,
                      num_workers=num_workers, drop_last=True, pin_memory=pin_memory, persistent_workers=False)


def run_steps(state: LoopState, max_steps: int, make_loader: Callable[[], Iterable],
              step_fn: Callable[[Any], Metrics | None], *,
              after_step: Callable[[Metrics, Any], None] | None = None,
              should_stop: Callable[[], str | None] | None = None) -> str:
    """Train from ``state`` until ``state.step == max_steps`` or ``should_stop()`` (called after every
    counted step) returns a reason; returns "max_steps" or that reason.

    ``step_fn(batch)``: one update, its metrics or None (skipped). ``after_step(metrics, batch)``: logging,
    validation and checkpoints of the step (``metrics["step"]`` is the new step count)."""
    stopped_by = "max_steps"
    while state.step < max_steps:
        loader = make_loader()
        if _finished(loader):  # the epoch was already finished
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            continue
        for batch in loader:
            metrics = step_fn(batch)
            state.batch_in_epoch += 1
            if metrics is not None:
                state.step += 1
                metrics["step"] = state.step
                if after_step is not None:
                    after_step(metrics, batch)
                reason = should_stop() if should_stop is not None else None
                if reason is not None:
                    max_steps, stopped_by = state.step, reason
            if state.step >= max_steps:  # before the next batch is drawn: a resumable stream counts what it gave
                break
        else:
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    return stopped_by


def _finished(loader: Iterable) -> bool:
    """An epoch with no batch left; a stream (``imf.data.shard_pairs.ShardLoader``) has no length and never ends."""
    try:
        return len(loader) == 0
    except TypeError:
        return False


def due(step: int, every: int) -> bool:
    """Whether a cadence of ``every`` steps falls on ``step`` (every <= 0: never)."""
    return every > 0 and step % every == 0
