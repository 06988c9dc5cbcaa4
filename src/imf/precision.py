"""Which autocast dtype a run gets: fast bf16 on a CPU is detected, never assumed (docs/architecture.md).

bf16 is fast on a CPU only where it has AVX512-BF16 or AMX (2.4× fp32 matmul on a Xeon with AMX);
elsewhere PyTorch emulates it and it is several times *slower* than fp32. ``cpu_has_fast_bf16`` reads the
CPU flags (``avx512_bf16``, ``amx_bf16`` in ``/proc/cpuinfo``) where that file exists and confirms them with
a sub-second matmul probe (bf16 vs fp32); without ``/proc/cpuinfo`` (macOS, Windows) the probe alone
decides. The answer is computed once per process. fp32 stays the reference path everywhere.

Two policies, one per job: ``resolve_precision`` (training's autocast dtype: an explicit "bf16" on a CPU
without fast bf16 runs fp32, since hours of emulated bf16 are never wanted; "auto" on a GPU without bf16 is
fp16 with a grad scaler) and ``inference_precision`` (inference: an explicit "bf16" runs even where it is
emulated, so the bf16 path can be checked on any machine; "auto" on a GPU without bf16 is fp32).
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import lru_cache
from pathlib import Path

import torch

from imf.errors import ConfigError

log = logging.getLogger(__name__)

PRECISION_NAMES = ("auto", "fp32", "bf16", "fp16")
PRECISION_CHOICES = PRECISION_NAMES  # what a caller may ask for
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # what runs -> autocast dtype
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
PROBE_SPEEDUP = 1.2  # bf16 must beat fp32 by this factor in the probe to count as fast
_PROBE_SIDE = 256  # (256 × 256) @ (256 × 256): ~34 MFLOP per call, milliseconds on any CPU


def cpu_flags(path: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU feature flags of the first processor in ``path`` (Linux ``/proc/cpuinfo``), or None where the
    file does not exist or cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            return frozenset(value.split())
    return frozenset()


def _best_seconds(a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    torch.matmul(a, b)  # warm-up (kernel selection, allocation)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return best


def bf16_matmul_speedup(side: int = _PROBE_SIDE, repeats: int = 5) -> float:
    """fp32 time / bf16 time of one (side × side) matmul on the CPU, best of ``repeats`` (> 1: bf16 faster).

    Costs well under a second, even where bf16 is emulated (about 10× slower than fp32)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(side, side, generator=g)
    b = torch.randn(side, side, generator=g)
    fp32 = _best_seconds(a, b, repeats)
    bf16 = _best_seconds(a.bfloat16(), b.bfloat16(), repeats)
    return fp32 / max(bf16, 1e-9)


@lru_cache(maxsize=None)
def cpu_has_fast_bf16(probe: bool = True) -> bool:
    """True where this CPU runs bf16 faster than fp32: a bf16 flag (``BF16_CPU_FLAGS``) and, if ``probe``,
    a matmul probe at least ``PROBE_SPEEDUP``× faster in bf16. Without ``/proc/cpuinfo`` only the probe
    decides (False if ``probe`` is off). Cached per process."""
    flags = cpu_flags()
    if flags is not None and not flags.intersection(BF16_CPU_FLAGS):
        return False
    if not probe:
        return flags is not None
    speedup = bf16_matmul_speedup()
    log.debug("CPU bf16 probe: bf16 matmul %.2fx fp32 (flags: %s)", speedup,
              "n/a" if flags is None else ",".join(sorted(flags.intersection(BF16_CPU_FLAGS))))
    return speedup >= PROBE_SPEEDUP


def resolve_precision(requested: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``requested`` ("auto", "fp32", "bf16", "fp16") on ``device``; None means fp32.

    - CUDA: "auto" → bf16 where the GPU supports it, else fp16 (with a grad scaler); "bf16" / "fp16" as asked.
    - CPU: bf16 only where ``cpu_has_fast_bf16()`` and "auto" or "bf16" was asked. An explicit "bf16" on a
      CPU without it, and "fp16" on any CPU, log a warning and run in fp32.
    - Other devices (mps): fp32.
    Raises ConfigError for an unknown name.
    """
    if requested not in PRECISION_NAMES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_NAMES)}, got {requested!r}")
    device = torch.device(device)
    if requested == "fp32":
        return None
    if device.type == "cuda":
        if requested == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if requested == "bf16" else torch.float16
    if device.type != "cpu":
        return None
    if requested == "fp16":
        log.warning("precision fp16 is not used on CPU (no fast fp16 kernels): running in fp32")
        return None
    if cpu_has_fast_bf16():
        return torch.bfloat16
    if requested == "bf16":
        log.warning("precision bf16 asked for, but this CPU has no fast bf16 (AVX512-BF16 or AMX): running in fp32")
    return None


def inference_precision(name: str, device: torch.device | str) -> str:
    """The precision that will run for ``name`` (one of ``PRECISION_CHOICES``) on ``device``: "fp32", "bf16"
    or "fp16" (``imf.pipeline``'s docstring). Raises ConfigError for an unknown name.

    - "auto": bf16 on a CUDA GPU with bf16 and on a CPU with fast bf16 (``imf.precision.cpu_has_fast_bf16``),
      fp32 elsewhere (CPUs without it, GPUs without bf16, mps).
    - "bf16": bf16 on a CPU even without fast bf16 (warning: emulated, slow), fp16 on a CUDA GPU without bf16.
    - "fp16": fp32 on a CPU (warning: no fast fp16 kernels).
    """
    if name not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {name!r}; expected one of {', '.join(PRECISION_CHOICES)}")
    device = torch.device(device)
    if name == "fp32":
        return name
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu":
            return "bf16" if cpu_has_fast_bf16() else "fp32"
        return "fp32"
    if device.type == "cpu":
        if name == "fp16":
            log.warning("precision fp16 is not used on CPU (no fast fp16 kernels here): running in fp32")
            return "fp32"
        if not cpu_has_fast_bf16():
            log.warning("precision bf16 on a CPU without fast bf16 (no AVX512-BF16 or AMX): it runs emulated, "
                        "several times slower than fp32 (precision auto picks fp32 here)")
        return name
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16: running in fp16")
        return "fp16"
    return name


def autocast_context(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision ("bf16", "fp16"), or a no-op for "fp32"."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
