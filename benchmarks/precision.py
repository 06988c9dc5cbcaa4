"""bf16 against fp32 at inference: the quality cost on held-out people, the codec's symbols, and the speed.

Usage::

    python benchmarks/precision.py [--ckpt DIR] [--videos CLIP.mp4 ...] [--frames 32] [--threads N] \\
        [--speed-presets tiny-64,small-128,paper-256] [--out benchmarks/results/precision.json]

Quality: each clip (default: every clip of ``data/corpus64/heldout_people``, people never in training) is
read as the model sees it (centre crop, S×S), its first ``--frames`` frames; frame 0 is the reference and the
others are rebuilt from their own tokens (``Pipeline.reconstruct``) once in fp32 (the reference path) and once
in bf16 (``precision="bf16"``: torch.autocast on the CPU). Scored in fp32, frame 0 left out: PSNR and LPIPS
(AlexNet, VGG) of each against the ground truth, and of bf16 against fp32. Goal: bf16's PSNR within 0.1 dB
of fp32's.

Codec: each clip is encoded (closed loop in fp32, as always) and decoded with the decoder in fp32 and in bf16:
the entropy-decoded symbols must be identical; the frames' PSNR against the source is reported for both.

Speed: per preset (random weights), ``decode`` of a batch of tokens against a prepared reference, fp32 and bf16
timed in alternation (the median of ``--repeats``), with ``imf.precision``'s detection and probe recorded. On a
CPU without fast bf16 (no AVX512-BF16 / AMX) bf16 is emulated: the figures then say so, and are no speed claim.
Timings taken while other jobs load the machine are only comparable with each other (same run, interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT / "data" / "corpus64" / "heldout_people"
GOAL_DB = 0.1


def _clips(args) -> list[Path]:
    if args.videos:
        return [Path(v) for v in args.videos]
    clips = sorted(DEFAULT_CLIPS.glob("*.mp4"))
    if not clips:
        sys.exit(f"no clip in {DEFAULT_CLIPS}: build the corpus (imf data corpus --size 64 --out data/corpus64) "
                 f"or pass --videos")
    return clips


def _scores(scorer, truth: torch.Tensor, frames: torch.Tensor) -> dict[str, float]:
    from imf.eval.reconstruct_eval import ScoreAccumulator

    acc = ScoreAccumulator()
    for i in range(0, len(truth), 16):
        acc.add(scorer.score(truth[i:i + 16], frames[i:i + 16]))
    return acc.means()


def quality(model, clip: Path, n: int, scorer) -> dict:
    from imf.data.video import iter_frames, to_tensor
    from imf.pipeline import Pipeline

    s = model.config.resolution
    frames = list(iter_frames(clip, size=s, stop=n))
    out = {}
    for p in ("fp32", "bf16"):
        pipe = Pipeline(model, device="cpu", precision=p, batch_size=8)
        t0 = time.perf_counter()
        out[p] = torch.stack(list(pipe.reconstruct(frames, frames[0], output="tensor")))[1:]  # (N-1, 3, S, S)
        out[f"{p}_seconds"] = time.perf_counter() - t0
    truth = to_tensor(frames[1:])
    fp32, bf16 = _scores(scorer, truth, out["fp32"]), _scores(scorer, truth, out["bf16"])
    between = _scores(scorer, out["fp32"], out["bf16"])
    diff = (out["bf16"] - out["fp32"]).abs()
    return {"clip": clip.name, "frames_scored": len(frames) - 1,
            "fp32_vs_truth": fp32, "bf16_vs_truth": bf16, "bf16_vs_fp32": between,
            "psnr_delta_db": bf16["psnr"] - fp32["psnr"],
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "max_uint8_diff": int((out["bf16"] * 255).round().sub((out["fp32"] * 255).round()).abs().max()),
            "reconstruct_seconds": {"fp32": out["fp32_seconds"], "bf16": out["bf16_seconds"]}}


def codec(model, tables, clip: Path, n: int, quality_level: int) -> dict:
    from imf.codec import decoder as codec_decoder
    from imf.codec import decode_file, encode_frames
    from imf.data.video import iter_frames, probe
    from imf.eval.metrics import psnr_uint8

    s = model.config.resolution
    frames = np.stack(list(iter_frames(clip, size=s, stop=n)))
    with tempfile.TemporaryDirectory(prefix="imf-precision-") as tmp:
        path = Path(tmp) / "clip.imf"
        encode_frames(model, iter(frames), path, fps=probe(clip).fps, tables=tables, quality=quality_level,
                      scene_cut_threshold=None, progress=False)
        seen: dict[str, list[np.ndarray]] = {}
        decoded: dict[str, np.ndarray] = {}
        original = codec_decoder.reconstruct_frames
        try:
            for p in ("fp32", "bf16"):
                seen[p] = []

                def spy(pipe, tc, symbols, reference, p=p):
                    seen[p].extend(np.array(symbols, copy=True))  # (n, d): one row per frame
                    return original(pipe, tc, symbols, reference)

                codec_decoder.reconstruct_frames = spy
                decoded[p] = np.stack(list(decode_file(path, model, tables=tables, precision=p)))
        finally:
            codec_decoder.reconstruct_frames = original
    same = len(seen["fp32"]) == len(seen["bf16"]) and all(np.array_equal(a, b) for a, b in zip(seen["fp32"],
                                                                                                seen["bf16"]))
    psnr = {p: float(np.mean([psnr_uint8(d, f) for d, f in zip(decoded[p][1:], frames[1:])])) for p in decoded}
    return {"clip": clip.name, "quality": quality_level, "token_frames": len(seen["fp32"]), "symbols_identical": same,
            "psnr_vs_source": psnr, "psnr_delta_db": psnr["bf16"] - psnr["fp32"],
            "max_uint8_diff": int(np.abs(decoded["bf16"].astype(int) - decoded["fp32"].astype(int)).max())}


def speed(preset: str, batch: int, repeats: int) -> dict:
    import imf
    from imf.fast import optimize_for_inference

    torch.manual_seed(0)
    model = optimize_for_inference(imf.IMF(imf.IMFConfig.preset(preset)))
    s, d_m = model.config.resolution, model.config.d_m
    gen = torch.Generator().manual_seed(0)
    x_r = torch.rand(1, 3, s, s, generator=gen)
    tokens = torch.randn(batch, d_m, generator=gen)
    refs, times = {}, {"fp32": [], "bf16": []}
    with torch.inference_mode():
        refs["fp32"] = model.prepare_reference(x_r)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            refs["bf16"] = model.prepare_reference(x_r)
        for r in range(repeats + 1):  # the first round is the warm-up
            for p in ("fp32", "bf16"):
                t0 = time.perf_counter()
                if p == "bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        model.decode(tokens, refs[p])
                else:
                    model.decode(tokens, refs[p])
                if r:
                    times[p].append(time.perf_counter() - t0)
    ms = {p: statistics.median(t) * 1e3 for p, t in times.items()}
    return {"preset": preset, "batch": batch, "repeats": repeats, "decode_ms": ms,
            "frames_per_s": {p: batch / (v / 1e3) for p, v in ms.items()}, "bf16_speedup": ms["fp32"] / ms["bf16"]}


def machine() -> dict:
    from imf.bench.machine import cpu_cores, cpu_model
    from imf.precision import BF16_CPU_FLAGS, bf16_matmul_speedup, cpu_flags, cpu_has_fast_bf16

    flags = cpu_flags()
    return {"cpu_model": cpu_model(), "cpu_cores": cpu_cores(), "platform": platform.platform(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_flags": sorted(flags.intersection(BF16_CPU_FLAGS)) if flags is not None else None,
            "cpu_has_fast_bf16": cpu_has_fast_bf16(), "bf16_matmul_probe_speedup": bf16_matmul_speedup(),
            "load_average": os.getloadavg()}


def run(args: argparse.Namespace) -> dict:
    import imf
    from imf.assets import shipped_model_path
    from imf.codec import load_tables
    from imf.eval.reconstruct_eval import FrameScorer

    torch.set_num_threads(args.threads)
    ckpt = Path(args.ckpt) if args.ckpt else shipped_model_path()
    model = imf.load_model(ckpt).eval()
    tables = load_tables(ckpt)
    scorer = FrameScorer(("psnr", "lpips_alex", "lpips_vgg"))
    result: dict = {"checkpoint": str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT) else ckpt),
                    "machine": machine(), "note": args.note, "frames_per_clip": args.frames, "goal_db": GOAL_DB,
                    "quality": [], "codec": [], "speed": []}
    for clip in _clips(args):
        print(f"quality: {clip.name}", file=sys.stderr)
        result["quality"].append(quality(model, clip, args.frames, scorer))
        result["codec"].append(codec(model, tables, clip, args.frames, args.codec_quality))
    q = result["quality"]
    result["summary"] = {
        "clips": len(q),
        "mean_psnr_fp32_db": float(np.mean([r["fp32_vs_truth"]["psnr"] for r in q])),
        "mean_psnr_bf16_db": float(np.mean([r["bf16_vs_truth"]["psnr"] for r in q])),
        "worst_abs_psnr_delta_db": float(max(abs(r["psnr_delta_db"]) for r in q)),
        "mean_psnr_bf16_vs_fp32_db": float(np.mean([r["bf16_vs_fp32"]["psnr"] for r in q])),
        "mean_lpips_alex_bf16_vs_fp32": float(np.mean([r["bf16_vs_fp32"].get("lpips_alex", np.nan) for r in q])),
        "goal_met": all(abs(r["psnr_delta_db"]) <= GOAL_DB for r in q),
        "codec_symbols_identical": all(c["symbols_identical"] for c in result["codec"]),
    }
    for preset in [p for p in args.speed_presets.split(",") if p]:
        for batch in (1, 8) if preset != "paper-256" else (1,):
            print(f"speed: {preset} ×{batch}", file=sys.stderr)
            result["speed"].append(speed(preset, batch, args.repeats))
    if not result["machine"]["cpu_has_fast_bf16"]:
        result["speed_note"] = ("this CPU has no fast bf16 (no AVX512-BF16 / AMX): bf16 is emulated and the speed "
                                "figures are no measure of bf16 inference")
    result["machine"]["load_average_at_end"] = os.getloadavg()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", help="model folder with codec tables (default: the shipped model)")
    p.add_argument("--videos", nargs="+", help=f"held-out clips (default: every clip of {DEFAULT_CLIPS})")
    p.add_argument("--frames", type=int, default=32, help="frames per clip, the reference included (default 32)")
    p.add_argument("--codec-quality", type=int, default=6, help="token quality of the codec check (default 6)")
    p.add_argument("--speed-presets", default="tiny-64,small-128,paper-256",
                   help="presets whose decode is timed in fp32 and bf16 ('' to skip)")
    p.add_argument("--repeats", type=int, default=3, help="timed decodes per precision (default 3)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    p.add_argument("--note", default="", help="a line recorded with the results (e.g. the machine's load)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision.json"))
    args = p.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(f"{s['clips']} held-out clips × {args.frames} frames: PSNR fp32 {s['mean_psnr_fp32_db']:.3f} dB, bf16 "
          f"{s['mean_psnr_bf16_db']:.3f} dB (worst |Δ| {s['worst_abs_psnr_delta_db']:.4f} dB, goal ≤ {GOAL_DB}); "
          f"bf16 vs fp32 {s['mean_psnr_bf16_vs_fp32_db']:.1f} dB; codec symbols identical: "
          f"{s['codec_symbols_identical']}")
    for r in result["speed"]:
        print(f"decode {r['preset']} ×{r['batch']}: fp32 {r['decode_ms']['fp32']:.1f} ms, bf16 "
              f"{r['decode_ms']['bf16']:.1f} ms ({r['bf16_speedup']:.2f}×)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
