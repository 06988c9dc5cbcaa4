"""Per-stage timings of one model at one batch size, with FLOPs and the achieved rate.

Stages: E_T (encoder side, per frame), E_F (per reference), IMF_D (per frame, and once per
reference for t_r), IMF_A at each scale (per frame: cross-attention + transformer blocks), D_F (per frame);
and the wholes: ``prepare_reference`` (per reference), ``decode`` (per frame, reference prepared once)
and ``forward`` (per frame with the reference recomputed, as a non-streaming caller pays).

Every stage runs at batch B on inputs computed beforehand, under ``torch.inference_mode``; the per-frame
stages share one reference (batch 1), as a decoder of one video does. FLOPs come from the flop counter
(``imf.info.model_summary``, batch 1) times B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from imf.bench.timing import Timing, time_call

PER_REFERENCE, PER_FRAME_DECODER, PER_FRAME_ENCODER, NON_STREAMING = (
    "per reference", "per frame (decoder)", "per frame (encoder)", "per frame (reference recomputed)")


@dataclass
class StageResult:
    stage: str
    scope: str
    batch: int
    timing: Timing
    flops: int | None
    """FLOPs of one call at this batch (None where the counter has no figure)."""

    def to_dict(self, peak_gflops: float | None) -> dict:
        t = self.timing.median_s
        out = {"stage": self.stage, "scope": self.scope, "batch": self.batch, **self.timing.to_dict(),
               "frames_per_s": self.batch / t}
        if self.flops is not None:
            rate = self.flops / t / 1e9
            out.update(gflop=self.flops / 1e9, gflops_per_s=rate)
            if peak_gflops:
                out["fraction_of_peak"] = rate / peak_gflops
        return out


def stage_flops(summary: dict) -> dict[str, int]:
    """FLOPs of one frame (batch 1) per stage name, from ``imf.info.model_summary``."""
    fl = summary["flops"]
    out = {name: fl["per_part"][name] for name in ("E_T", "E_F", "IMF_D", "D_F")}
    for a in fl["alignment_per_scale"]:
        out[f"IMF_A^{a['scale']}"] = a["cross_attention"] + a["transformer"]
    out["prepare_reference"] = fl["per_reference"]
    out["decode"] = fl["per_frame_decoder"]
    out["forward"] = fl["full_forward"]
    return out


def measure_stages(model, batch: int, device: torch.device, flops_per_frame: dict[str, int],
                   repeats: int = 5, warmup: int = 1, progress: Callable[[str], None] | None = None
                   ) -> list[StageResult]:
    """Time every stage of ``model`` (eval, on ``device``) at ``batch``; see the module docstring."""
    c = model.config
    s = c.resolution
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, s, s, generator=gen).to(device)  # current frames
    x_r = torch.rand(1, 3, s, s, generator=gen).to(device)  # the shared reference
    x_rb = x_r.expand(batch, -1, -1, -1).contiguous()  # (B, 3, S, S): B references, for per-reference stages
    results: list[StageResult] = []

    def run(name: str, scope: str, fn: Callable[[], object]) -> None:
        if progress:
            progress(f"{name} ×{batch}")
        timing = time_call(fn, device, repeats=repeats, warmup=warmup)
        f = flops_per_frame.get(name)
        results.append(StageResult(name, scope, batch, timing, None if f is None else f * batch))

    with torch.inference_mode():
        ref = model.prepare_reference(x_r)
        t = model.encode_token(x)  # (B, d_m)
        m_c = model.token_decoder(t)  # [m^1..m^4], each (B, c_m, H, W)
        f_c = model.motion_alignment(m_c, ref.keys_values)  # [f_c^1..f_c^4]
        run("E_T", PER_FRAME_ENCODER, lambda: model.token_encoder(x))
        run("E_F", PER_REFERENCE, lambda: model.feature_encoder(x_rb))
        run("IMF_D", PER_FRAME_DECODER, lambda: model.token_decoder(t))
        for l, scale in enumerate(model.motion_alignment.scales):
            k, v = ref.keys_values[l]
            run(f"IMF_A^{l + 1}", PER_FRAME_DECODER, lambda scale=scale, l=l, k=k, v=v: scale(m_c[l], k, v))
        run("D_F", PER_FRAME_DECODER, lambda: model.frame_decoder(f_c))
        run("prepare_reference", PER_REFERENCE, lambda: model.prepare_reference(x_rb))
        run("decode", PER_FRAME_DECODER, lambda: model.decode(t, ref))
        run("forward", NON_STREAMING, lambda: model(x, x_rb))
    return results
