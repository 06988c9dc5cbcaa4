"""The GPU suite (``benchmarks/gpu.sh``): paper-256 decode frames/s at batch 1, 8 and 32 in bf16, with and
without ``torch.compile``; a training step's samples/s at batch 16 with AMP; peak memory; in under five
minutes on an H100/H200.

Decoding runs the model cast to the dtype (weights and activations; inference needs no fp32 master
weights) after ``optimize_for_inference`` (channels-last convolutions), one shared reference per batch,
under ``torch.inference_mode``; the achieved TFLOP/s uses the fp32 flop count of a decoded frame.
``torch.compile`` wraps ``model.decode`` once; each new batch size may recompile, and the first call's
time (compile included) is reported apart. Training uses ``Trainer.train_step`` with ``run.precision = "auto"`` (bf16 autocast
where supported). The JSON is rewritten after every measurement, and a time budget skips what would not
fit, so a run cut short still leaves its numbers.

``--dry-run``: the same code on CPU with tiny-64, batches 1 and 2, and the ``eager`` compile backend
(dynamo traces the decode; no C++ toolchain needed), so the script is known to run before a GPU is.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import torch

from imf.bench.machine import machine_info, matmul_peak
from imf.bench.report import write_json
from imf.bench.timing import synchronize, time_call

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass
class GpuOptions:
    preset: str = "paper-256"
    batches: tuple[int, ...] = (1, 8, 32)
    dtype: str = "bf16"
    compile_backend: str = "inductor"
    train_batch: int = 16
    repeats: int = 10
    warmup: int = 3
    device: str = "cuda"
    peak_seconds: float = 1.0
    budget_s: float = 270.0
    """Measurements that would start after this many seconds are skipped (and listed as skipped)."""

    @classmethod
    def dry_run(cls) -> "GpuOptions":
        return cls(preset="tiny-64", batches=(1, 2), compile_backend="eager", train_batch=2, repeats=1,
                   warmup=1, device="cpu", peak_seconds=0.2)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def decode_throughput(decode, ref, tokens: torch.Tensor, device: torch.device, repeats: int, warmup: int) -> dict:
    """frames/s of ``decode(tokens, ref)``; the first call is timed apart (it includes any compilation)."""
    _peak_reset(device)
    synchronize(device)
    t0 = time.perf_counter()
    decode(tokens, ref)
    synchronize(device)
    first = time.perf_counter() - t0
    timing = time_call(lambda: decode(tokens, ref), device, repeats=repeats, warmup=max(0, warmup - 1))
    b = tokens.shape[0]
    return {"batch": b, "first_call_s": first, **timing.to_dict(), "frames_per_s": b / timing.median_s,
            "peak_memory_mib": _peak_mib(device)}


def run_gpu_suite(opt: GpuOptions, json_path: str | None = None, say=print) -> dict:
    import imf
    from imf.bench.stages import stage_flops
    from imf.bench.training import training_throughput
    from imf.info import model_summary
    from imf.fast import optimize_for_inference

    started = time.perf_counter()
    device = torch.device(opt.device)
    dtype = DTYPES[opt.dtype]
    result: dict = {"suite": "gpu", "machine": machine_info(device), "options": asdict(opt), "decode": [],
                    "training": None, "skipped": []}

    def save() -> None:
        result["seconds"] = time.perf_counter() - started
        if json_path:
            write_json(result, json_path)

    def in_budget(what: str) -> bool:
        if time.perf_counter() - started > opt.budget_s:
            result["skipped"].append(what)
            say(f"skipped (over the {opt.budget_s:.0f} s budget): {what}")
            return False
        return True

    say("matmul peak")
    n_fp32, n_low = (4096, 8192) if device.type == "cuda" else (1024, 1024)
    result["matmul_peak"] = {
        "fp32": matmul_peak(device, seconds=opt.peak_seconds, n=n_fp32).to_dict(),
        opt.dtype: matmul_peak(device, seconds=opt.peak_seconds, n=n_low, dtype=dtype).to_dict()}
    save()
    torch.manual_seed(0)
    model = imf.IMF(imf.IMFConfig.preset(opt.preset)).eval().requires_grad_(False)
    say("FLOPs per frame")
    decode_flops = stage_flops(model_summary(model))["decode"]
    result["decode_gflop_per_frame"] = decode_flops / 1e9
    model = optimize_for_inference(model.to(device, dtype))
    s = model.config.resolution
    with torch.inference_mode():
        ref = model.prepare_reference(torch.rand(1, 3, s, s, device=device, dtype=dtype))

    def decode_rows(compiled: bool) -> None:
        decode = torch.compile(model.decode, backend=opt.compile_backend) if compiled else model.decode
        for b in opt.batches:
            what = f"decode {opt.preset} ×{b} {opt.dtype}{' compiled' if compiled else ''}"
            if not in_budget(what):
                continue
            say(what)
            tokens = torch.randn(b, model.config.d_m, device=device, dtype=dtype)
            try:
                with torch.inference_mode():
                    row = decode_throughput(decode, ref, tokens, device, opt.repeats, opt.warmup)
                row["achieved_tflops"] = decode_flops * b / (row["median_ms"] / 1e3) / 1e12
            except Exception as e:  # a failed compile must not lose the other numbers
                row = {"batch": b, "error": f"{type(e).__name__}: {e}"[:2000]}
            result["decode"].append({"dtype": opt.dtype, "compiled": compiled,
                                     "compile_backend": opt.compile_backend if compiled else None, **row})
            save()

    # cheapest first: eager decoding, then the training step, then the compiled decode (compilation
    # takes the longest and is the likeliest to run past the budget)
    decode_rows(compiled=False)
    what = f"training {opt.preset} ×{opt.train_batch} amp"
    if in_budget(what):
        say(what)
        try:
            result["training"] = training_throughput(opt.preset, opt.train_batch, device, repeats=opt.repeats,
                                                     warmup=opt.warmup, precision="auto")
        except Exception as e:
            result["training"] = {"error": f"{type(e).__name__}: {e}"[:2000]}
        save()
    decode_rows(compiled=True)
    save()
    return result


def format_gpu_report(result: dict) -> str:
    m = result["machine"]
    lines = [f"device: {m.get('gpu_name', m['device'])}; torch {m['torch_version']}"]
    for key, p in result["matmul_peak"].items():
        lines.append(f"matmul peak {key}: best {p['best_gflops']:.0f} GFLOP/s (median {p['median_gflops']:.0f})")
    for r in result["decode"]:
        tag = f"{r['dtype']}{' compiled' if r['compiled'] else ''}"
        if "error" in r:
            lines.append(f"decode ×{r['batch']:<3} {tag:<14} error: {r['error'][:200]}")
        else:
            mem = f", peak {r['peak_memory_mib']:.0f} MiB" if r["peak_memory_mib"] is not None else ""
            lines.append(f"decode ×{r['batch']:<3} {tag:<14} {r['frames_per_s']:9.1f} frames/s, "
                         f"{r['achieved_tflops']:.2f} TFLOP/s (first call {r['first_call_s']:.1f} s{mem})")
    t = result["training"]
    if t and "error" not in t:
        mem = f", peak {t['peak_memory_mib']:.0f} MiB" if t.get("peak_memory_mib") is not None else ""
        lines.append(f"training ×{t['batch']} ({t['precision']}): {t['samples_per_s']:.1f} samples/s{mem}")
    elif t:
        lines.append(f"training: error: {t['error'][:200]}")
    if result["skipped"]:
        lines.append(f"skipped: {', '.join(result['skipped'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="IMF GPU benchmark suite (see benchmarks/gpu.sh).")
    p.add_argument("--dry-run", action="store_true", help="tiny-64 on CPU with the eager compile backend")
    p.add_argument("--json", metavar="FILE", help="write the results here (rewritten after each measurement)")
    p.add_argument("--budget-s", type=float, default=None, help="skip measurements that would start later")
    args = p.parse_args(argv)
    opt = GpuOptions.dry_run() if args.dry_run else GpuOptions()
    if args.budget_s is not None:
        opt.budget_s = args.budget_s
    if opt.device == "cuda" and not torch.cuda.is_available():
        print("gpu suite: CUDA is not available (use --dry-run on a CPU machine)", file=sys.stderr)
        return 2
    result = run_gpu_suite(opt, args.json, say=lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}",
                                                                  file=sys.stderr, flush=True))
    print(format_gpu_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
