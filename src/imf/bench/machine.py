"""What the benchmarks ran on, and that machine's own fp32 matrix-multiply peak.

The peak is measured, not looked up: a large square ``torch.mm`` repeated for a few seconds on the same
device, dtype and thread count as the model, so "fraction of peak" compares like with like.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import torch

from imf.bench.timing import synchronize


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info(device: torch.device) -> dict:
    """Platform, CPU model, cores, torch threads and version, and the accelerator's name if any."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_cores": cpu_cores(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu_name=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda_version=torch.version.cuda)
    return info


@dataclass
class MatmulPeak:
    """Achieved rate of an n×n @ n×n ``torch.mm`` (2n³ FLOPs per call): median and best over the calls."""

    n: int
    dtype: str
    calls: int
    seconds: float
    median_gflops: float
    best_gflops: float

    def to_dict(self) -> dict:
        return asdict(self)


def matmul_peak(device: torch.device, seconds: float = 3.0, n: int = 2048,
                dtype: torch.dtype = torch.float32) -> MatmulPeak:
    """Repeat ``a @ b`` (n×n) for about ``seconds`` after one warm-up call; rates in GFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: thread pool, kernel choice
    synchronize(device)
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    return MatmulPeak(n=n, dtype=str(dtype).replace("torch.", ""), calls=len(rates),
                      seconds=round(time.perf_counter() - start, 2),
                      median_gflops=rates[len(rates) // 2], best_gflops=rates[-1])
