"""A/B timings of each fast path against its plain path, on the same decode, interleaved.

- ``channels_last``: conv weights NCHW (plain) vs channels-last (``imf.fast.channels_last_``).
- ``modulation``: every ModulatedConv2d on the grouped conv (``fused=True``, the former default), on the
  scaled activations (``fused=False``), and choosing per call (``fused=None``, the default now).
- ``attention``: the explicit softmax path (materialises n×m scores) vs SDPA on its fused kernels.
Each row: median ms per decode of ``batch`` frames per variant, the speed-up of the fast variant over the
plain one, and the largest output difference between them.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch

from imf.bench.timing import synchronize
from imf.layers.attention import set_sdpa
from imf.layers.modulated import set_fused_modulation
from imf.fast import channels_last_


def _plain_layout(model):
    plain = copy.deepcopy(model)
    for p in plain.parameters():
        p.data = p.data.contiguous()
    return plain


def _ab(variants: dict[str, tuple[Callable[[], None], Callable[[], torch.Tensor]]], device: torch.device,
        repeats: int, warmup: int) -> dict:
    """variants: name → (switch, call). Round-robin; returns medians in ms and outputs of the last round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, torch.Tensor] = {}
    for r in range(warmup + repeats):
        for name, (switch, call) in variants.items():
            switch()
            synchronize(device)
            t0 = time.perf_counter()
            outputs[name] = call()
            synchronize(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {"ms": {n: statistics.median(t) * 1e3 for n, t in times.items()}, "outputs": outputs}


FAST_PATHS = ("channels_last", "modulation", "attention")


def compare_fast_paths(model, batch: int, device: torch.device, repeats: int = 3, warmup: int = 1,
                       which: tuple[str, ...] = FAST_PATHS) -> list[dict]:
    """Decode ``batch`` frames (one shared reference) with each fast path in ``which`` off and on."""
    s, d_m = model.config.resolution, model.config.d_m
    gen = torch.Generator().manual_seed(1)
    x_r = torch.rand(1, 3, s, s, generator=gen).to(device)
    tokens = torch.randn(batch, d_m, generator=gen).to(device)
    rows = []
    nothing = lambda: None  # noqa: E731
    with torch.inference_mode():
        fast = channels_last_(copy.deepcopy(model))
        ref_fast = fast.prepare_reference(x_r)
        if "channels_last" in which:
            plain = _plain_layout(model)
            ref_plain = plain.prepare_reference(x_r)
            res = _ab({"nchw": (nothing, lambda: plain.decode(tokens, ref_plain)),
                       "channels_last": (nothing, lambda: fast.decode(tokens, ref_fast))}, device, repeats, warmup)
            rows.append(_row("channels_last", batch, res, "nchw", "channels_last"))
            del plain, ref_plain

        def mod(mode):
            return lambda: set_fused_modulation(fast, mode)

        call = lambda: fast.decode(tokens, ref_fast)  # noqa: E731
        if "modulation" in which:
            res = _ab({"grouped": (mod(True), call), "scaled": (mod(False), call), "auto": (mod(None), call)},
                      device, repeats, warmup)
            set_fused_modulation(fast, None)
            rows.append(_row("modulation", batch, res, "grouped", "auto"))

        def sdpa(on):
            return lambda: set_sdpa(fast, on)

        if "attention" in which:
            res = _ab({"explicit": (sdpa(False), call), "sdpa": (sdpa(True), call)}, device, repeats, warmup)
            set_sdpa(fast, True)
            rows.append(_row("attention", batch, res, "explicit", "sdpa"))
    return rows


def _row(name: str, batch: int, res: dict, plain: str, fast: str) -> dict:
    out = res["outputs"]
    diff = max(float((out[k] - out[plain]).abs().max()) for k in out)
    return {"fast_path": name, "batch": batch, "ms": res["ms"], "plain": plain, "fast": fast,
            "speedup": res["ms"][plain] / res["ms"][fast], "max_abs_diff": diff}
