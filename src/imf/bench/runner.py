"""The whole CPU/GPU benchmark behind ``imf bench`` and ``benchmarks/speed.py``: one JSON-able dict.

Per preset: per-stage timings at each batch size (frames/s, GFLOP, GFLOP/s and the fraction of the
machine's measured matmul peak), peak memory of decoding at each batch size, which SDPA kernels the
decode runs, and streaming decode against ``forward`` per frame. Then training samples/s, in fp32 and, where the
device has fast bf16 (a CPU with AVX512-BF16 / AMX, detected; a GPU with bf16), under bf16 autocast. Numbers only:
nothing here asserts a speed; ``goals`` says which of the speed goals a run met.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from imf.bench.attention_check import attention_report
from imf.bench.fast_paths import compare_fast_paths
from imf.bench.machine import machine_info, matmul_peak
from imf.bench.memory import measure as measure_memory
from imf.bench.profile import top_ops
from imf.bench.stages import measure_stages, stage_flops
from imf.bench.streaming import streaming_vs_forward
from imf.bench.training import training_throughputs

PEAK_FRACTION_GOAL = 0.40
MEMORY_GOAL_MIB = 2048.0
# Largest |streaming - forward| that still counts as the same output, per precision: the two paths round
# differently, and bf16 keeps 8 bits of mantissa (tiny-64: ~1e-2 between bf16 and fp32 outputs).
STREAM_TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "fp16": 1e-2}


@dataclass
class BenchOptions:
    """What to measure and how often. ``quick`` shrinks everything to a smoke run (seconds at tiny-64)."""

    presets: tuple[str, ...] = ("tiny-64", "small-128", "paper-256")
    batches: tuple[int, ...] = (1, 8)
    device: str = "cpu"
    threads: int | None = None
    """torch intra-op threads (None: torch's default, one per core)."""
    repeats: int = 5
    warmup: int = 1
    stream_frames: int = 8
    memory: bool = True
    train_presets: tuple[str, ...] = ("tiny-64", "small-128")
    train_batch: int = 16
    train_repeats: int = 3
    peak_seconds: float = 3.0
    fast: bool = True
    """Measure the model after ``imf.fast.optimize_for_inference`` (channels-last convs)."""
    compare: bool = True
    """A/B each fast path against its plain path (all at batch 1; modulation also at the largest batch)."""
    precision: str = "fp32"
    """The model's precision ("fp32", "auto", "bf16", "fp16": ``imf.pipeline.resolve_precision``): stages,
    streaming, attention, profile and fast paths run under its autocast, and the matmul peak every fraction is
    taken of is measured in its dtype (a bf16 run against the bf16 peak). Peak memory: fp32. Training is timed in
    fp32 and, where the device has fast bf16 (``_fast_bf16``), also under bf16 autocast, whatever this says."""
    quick: bool = False
    seed: int = 0

    def effective(self) -> "BenchOptions":
        """These options with ``quick`` applied: 1 repeat, batches (1, 2), 2 streamed frames, a batch-2
        training step, a 0.3 s matmul peak."""
        if not self.quick:
            return self
        return BenchOptions(**{**asdict(self), "batches": tuple(min(b, 2) for b in self.batches),
                               "repeats": 1, "stream_frames": 2, "train_batch": 2, "train_repeats": 1,
                               "peak_seconds": 0.3})


def _model(preset: str, device: torch.device, seed: int, fast: bool):
    import imf
    from imf.fast import optimize_for_inference

    torch.manual_seed(seed)
    model = imf.IMF(imf.IMFConfig.preset(preset)).eval().requires_grad_(False).to(device)
    return optimize_for_inference(model) if fast else model


def _goals(preset_result: dict, peak_gflops: float) -> dict:
    decode1 = next((s for s in preset_result["stages"] if s["stage"] == "decode" and s["batch"] == 1), None)
    mem1 = next((m for m in preset_result.get("memory", []) if m["batch"] == 1), None)
    stream = preset_result["streaming"]
    goals = {
        "streaming_ratio": {"measured": stream["ratio"], "target": stream["goal_ratio"], "met": stream["goal_met"]},
        "attention_fused_only": {"math_fallback_calls": preset_result["attention"]["math_fallback_calls"],
                                 "met": preset_result["attention"]["fused_only"]},
    }
    if decode1 is not None:
        frac = decode1["gflops_per_s"] / peak_gflops
        goals["decode_fraction_of_peak"] = {"measured": frac, "target": PEAK_FRACTION_GOAL,
                                            "met": frac >= PEAK_FRACTION_GOAL}
    if mem1 is not None:
        goals["decode_peak_memory_mib_batch1"] = {"measured": mem1["peak_mib"], "target": MEMORY_GOAL_MIB,
                                                  "met": mem1["peak_mib"] < MEMORY_GOAL_MIB}
    return goals


def run_benchmark(options: BenchOptions, progress: Callable[[str], None] | None = None,
                  checkpoint: Callable[[dict], None] | None = None) -> dict:
    """Measure everything ``options`` asks for; ``checkpoint(result)`` is called after each part so that
    a caller can write partial results; returns the result dict (see ``format_report``)."""
    from imf.info import model_summary

    from imf.pipeline import PRECISIONS, autocast_context, resolve_precision
    from imf.precision import cpu_has_fast_bf16

    opt = options.effective()
    device = torch.device(opt.device)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    precision = resolve_precision(opt.precision, device)
    peak_dtype = PRECISIONS[precision] or torch.float32
    tolerance = STREAM_TOLERANCE[precision]
    say = progress or (lambda msg: None)
    started = time.time()
    say("matmul peak")
    peak = matmul_peak(device, seconds=opt.peak_seconds, dtype=peak_dtype)
    result: dict = {"machine": machine_info(device), "options": asdict(opt), "precision": precision,
                    "cpu_has_fast_bf16": cpu_has_fast_bf16() if device.type == "cpu" else None,
                    "fast_paths": {"sdpa": True, "modulation": "auto (ModulatedConv2d.fused = None)",
                                   "inference_mode": True, "channels_last": opt.fast},
                    "matmul_peak": peak.to_dict(), "presets": {}, "training": []}
    peak_gflops = peak.best_gflops  # until the end-of-run figure is in (see apply_peak)
    for preset in opt.presets:
        say(f"{preset}: FLOPs")
        model = _model(preset, device, opt.seed, opt.fast)
        summary = model_summary(model if device.type == "cpu" else copy.deepcopy(model).cpu())  # it copies
        flops = stage_flops(summary)
        entry: dict = {"flops_per_frame": flops, "precision": precision, "stages": []}
        with autocast_context(precision, device):  # the model's calls; the peak was measured in its dtype
            for batch in opt.batches:
                stages = measure_stages(model, batch, device, flops, repeats=opt.repeats, warmup=opt.warmup,
                                        progress=lambda msg: say(f"{preset}: {msg}"))
                entry["stages"] += [s.to_dict(peak_gflops) for s in stages]
            s = model.config.resolution
            gen = torch.Generator().manual_seed(opt.seed)
            frames = torch.rand(opt.stream_frames, 3, s, s, generator=gen).to(device)
            reference = torch.rand(1, 3, s, s, generator=gen).to(device)
            say(f"{preset}: streaming vs forward ({opt.stream_frames} frames)")
            entry["streaming"] = streaming_vs_forward(model, frames, reference, device, flops, warmup=opt.warmup,
                                                      tolerance=tolerance)
            with torch.inference_mode():
                ref = model.prepare_reference(reference)
                tokens = model.encode_token(frames[:1])
                entry["attention"] = attention_report(lambda: model.decode(tokens, ref))
                entry["profile_decode_batch1"] = top_ops(lambda: model.decode(tokens, ref))
            if opt.compare:
                say(f"{preset}: fast paths A/B")
                reps = min(opt.repeats, 3)
                entry["fast_paths"] = compare_fast_paths(model, 1, device, repeats=reps, warmup=opt.warmup)
                if max(opt.batches) > 1:
                    entry["fast_paths"] += compare_fast_paths(model, max(opt.batches), device, repeats=reps,
                                                              warmup=opt.warmup, which=("modulation",))
        if opt.memory:
            entry["memory"] = []
            for batch in opt.batches:
                say(f"{preset}: peak memory of decode ×{batch}")
                entry["memory"].append(measure_memory(preset, batch, device, opt.threads, fast=opt.fast))
        entry["goals"] = _goals(entry, peak_gflops)
        result["presets"][preset] = entry
        del model
        if checkpoint:
            checkpoint(result)
    train_bf16 = _fast_bf16(device)
    if opt.train_presets and not train_bf16:
        result["training_bf16_skipped"] = ("no fast bf16 on this device (CPU: AVX512-BF16 / AMX, detected by "
                                           "imf.precision; GPU: torch.cuda.is_bf16_supported): fp32 only")
    for preset in opt.train_presets:
        precisions = ("fp32", "bf16") if train_bf16 else ("fp32",)
        say(f"{preset}: training step ×{opt.train_batch} ({', '.join(precisions)})")
        result["training"] += training_throughputs(preset, opt.train_batch, device, precisions,
                                                   repeats=opt.train_repeats, warmup=1)
        if checkpoint:
            checkpoint(result)
    say("matmul peak again")
    result["matmul_peak_at_end"] = matmul_peak(device, seconds=opt.peak_seconds, dtype=peak_dtype).to_dict()
    apply_peak(result)
    result["seconds"] = time.time() - started
    return result


def _fast_bf16(device: torch.device) -> bool:
    """Whether training is also timed under bf16 autocast here: a CPU with fast bf16 (detected, never assumed)
    or a CUDA GPU with bf16."""
    if device.type == "cpu":
        from imf.precision import cpu_has_fast_bf16

        return cpu_has_fast_bf16()
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def apply_peak(result: dict) -> None:
    """Set the peak every fraction is taken of, and recompute the fractions and goals with it.

    Peak = the fastest ``torch.mm`` call of those timed at the start and at the end of the run. On a
    shared machine other load only ever slows a call down, so the best call is the cleanest estimate of
    what the cores can do, and using the larger of the two ends keeps the fractions conservative."""
    bests = [result[k]["best_gflops"] for k in ("matmul_peak", "matmul_peak_at_end") if k in result]
    peak = max(bests)
    result["peak_gflops"] = {"value": peak, "rule": "best torch.mm call at the start and the end of the run"}
    for entry in result["presets"].values():
        for row in entry["stages"]:
            if "gflops_per_s" in row:
                row["fraction_of_peak"] = row["gflops_per_s"] / peak
        entry["goals"] = _goals(entry, peak)
