"""Streaming decode against calling ``forward`` per frame: same frames, same run, interleaved.

Streaming (docs/imf-format.md): the reference is prepared once (``prepare_reference``), then each frame costs
``decode(t_c, ref)``; the tokens t_c come from the encoder side and are not part of the decoder's time.
Non-streaming: ``model(x_c, x_r)`` per frame recomputes E_F, E_T(x_r), IMF_D(t_r) and also E_T(x_c).

The ideal speed-up is the FLOP ratio full_forward / per_frame_decoder (the reference work is free per
frame); the goal is a measured per-frame time ratio of at least 90 % of it. Outputs are compared: the
two paths must agree to float tolerance.
"""

from __future__ import annotations

import statistics
import time

import torch

from imf.bench.timing import synchronize

GOAL_FRACTION = 0.9
TOLERANCE = 1e-4


def streaming_vs_forward(model, frames: torch.Tensor, reference: torch.Tensor, device: torch.device,
                         flops: dict[str, int], warmup: int = 1, tolerance: float = TOLERANCE) -> dict:
    """frames (N, 3, S, S), reference (1, 3, S, S), one frame per call in both paths.

    ``flops``: per-frame FLOPs with keys "decode", "forward" and "prepare_reference" (batch 1).
    ``tolerance``: the largest output difference that counts as a match (larger under bf16 autocast)."""
    n = frames.shape[0]
    with torch.inference_mode():
        tokens = model.encode_token(frames)  # (N, d_m): what the decoder receives
        for _ in range(warmup):
            model(frames[:1], reference)
            model.decode(tokens[:1], model.prepare_reference(reference))
        synchronize(device)
        t0 = time.perf_counter()
        ref = model.prepare_reference(reference)
        synchronize(device)
        t_ref = time.perf_counter() - t0
        t_fwd, t_dec, max_diff = [], [], 0.0
        for i in range(n):  # interleaved, so load changes on a shared machine hit both paths alike
            t0 = time.perf_counter()
            full = model(frames[i:i + 1], reference)
            synchronize(device)
            t_fwd.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            streamed = model.decode(tokens[i:i + 1], ref)
            synchronize(device)
            t_dec.append(time.perf_counter() - t0)
            max_diff = max(max_diff, float((full.float() - streamed.float()).abs().max()))
    fwd, dec = statistics.median(t_fwd), statistics.median(t_dec)
    flop_ratio = flops["forward"] / flops["decode"]
    ratio = fwd / dec
    return {
        "frames": n,
        "forward_ms_per_frame": fwd * 1e3,
        "decode_ms_per_frame": dec * 1e3,
        "prepare_reference_ms": t_ref * 1e3,
        "ratio": ratio,
        "ratio_with_reference_amortized": n * fwd / (t_ref + n * dec),
        "flop_ratio": flop_ratio,
        "goal_ratio": GOAL_FRACTION * flop_ratio,
        "goal_met": ratio >= GOAL_FRACTION * flop_ratio,
        "ratio_over_flop_ratio": ratio / flop_ratio,
        "max_abs_diff": max_diff,
        "outputs_match": max_diff <= tolerance,
        "tolerance": tolerance,
    }
