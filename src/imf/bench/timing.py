"""Wall-clock timing: the median of N calls after warm-up, with the device synchronised around each."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds per call: the median and every sample (warm-up calls excluded)."""

    median_s: float
    samples_s: list[float]

    def to_dict(self) -> dict:
        return {"median_ms": self.median_s * 1e3, "min_ms": min(self.samples_s) * 1e3,
                "max_ms": max(self.samples_s) * 1e3, "repeats": len(self.samples_s)}


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; the median of those."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - t0)
    return Timing(statistics.median(samples), samples)


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int = 5,
                     warmup: int = 1) -> dict[str, Timing]:
    """Time several calls in alternation (a, b, a, b, …), so a load change on a shared machine hits all
    of them alike; one Timing per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append(time.perf_counter() - t0)
    return {name: Timing(statistics.median(s), s) for name, s in samples.items()}
