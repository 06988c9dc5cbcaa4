"""Effect of rate-aware fine-tuning of E_T: token bits per frame and PSNR on held-out frames,
before and after fine-tuning for a few λ, at the trained quality and its neighbours.

Usage::

    python benchmarks/rate_finetune.py --ckpt RUN/model [--video CLIP.mp4] [--holdout 0.2] [--quality 6] \\
        [--lambdas 0,0.01,0.05] [--steps 300] [--no-perceptual] [--out benchmarks/results/rate_finetune.json]

Frames: the sample clip (WolfgangLanger_Pexels.mp4) at the model's resolution; fine-tuning pairs and
entropy tables use its first 80% (PairDataset's split_by="frames" train range), measurements the
held-out last 20% (``imf.data.dataset.held_out_frames``), reference = the clip's first frame (as
benchmarks/learning.py), decoded in one batch, no keyframe codec (this isolates the tokens).

Bits: ideal code lengths of the quantized held-out tokens under the codec's integer tables (static:
every frame; temporal: first frame static, then residuals), which the range coder meets within a
fraction of a percent (see imf.codec.stats). Tables before: the checkpoint's quantizer when its tables
fit the model (else fitted here), entropy tables refitted on the training frames. After: for each λ,
"kept" = tables refitted with the same quantizer (what ``imf codec finetune`` stores) and "refit" =
``fit_codec`` from scratch (spread re-measured on the new tokens). λ = 0 is the control: fine-tuning
with the quantization-noise proxy but no rate term. Nothing is written into the checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imf.eval.metrics import PSNR_MSE_FLOOR, psnr


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


@torch.no_grad()
def measure(model, tables, qualities: list[int], reference: np.ndarray, frames: np.ndarray,
            batch: int = 32) -> dict:
    """Token bits per frame and PSNR / L1 of the held-out frames at each quality (and unquantized PSNR)."""
    from imf.data.video import to_tensor

    model.eval()
    ref = model.prepare_reference(to_tensor(reference))
    target = to_tensor(frames)  # (T, 3, S, S)
    tokens = torch.cat([model.encode_token(target[i:i + batch]) for i in range(0, len(target), batch)])  # (T, d)

    def scores(t: torch.Tensor) -> dict[str, float]:
        pred = torch.cat([model.decode(t[i:i + batch], ref) for i in range(0, len(t), batch)])
        return {"psnr": float(psnr(pred, target, PSNR_MSE_FLOOR).mean()),
                "l1": float((pred - target).abs().mean())}

    out = {"unquantized": scores(tokens), "qualities": {}}
    for q in qualities:
        level = tables.level(q)
        symbols = level.quantizer.quantize(tokens)  # (T, d) int64
        n = len(symbols)
        temporal = level.static.bits(symbols[:1]) + level.temporal.bits(symbols[1:] - symbols[:-1])
        row = {"static_bits_per_frame": level.static.bits(symbols) / n, "temporal_bits_per_frame": temporal / n}
        row.update(scores(level.quantizer.dequantize(symbols, device=tokens.device)))
        out["qualities"][str(q)] = row
    return out


def run(args: argparse.Namespace) -> dict:
    import imf
    from imf.codec import fit_codec, has_tables, load_tables
    from imf.codec.rate_model import refit_tables
    from imf.train.rate import RateFinetuneConfig, finetune_rate, training_frames
    from imf.data.dataset import DataConfig, PairDataset, held_out_frames

    torch.set_num_threads(args.threads)
    model = imf.load_model(args.ckpt, map_location=args.device).eval()
    identity = imf.model_hash(model)
    size = model.config.resolution
    video = Path(args.video) if args.video else _default_video()
    held = held_out_frames(video, size, args.holdout)
    frames = held.frames if args.max_frames is None else held.frames[:args.max_frames]
    data = DataConfig(size=size, split_by="frames", val_fraction=args.holdout, hflip_prob=0.0)  # as the codec sees it
    pairs = PairDataset([video], data, split="train", progress=not args.quiet)
    train, train_names = training_frames(pairs)
    qualities = args.eval_qualities or [q for q in (args.quality - 2, args.quality, args.quality + 2) if 1 <= q <= 12]
    if args.quality not in qualities:
        qualities = sorted(qualities + [args.quality])

    ckpt_tables = load_tables(args.ckpt) if has_tables(args.ckpt) else None
    if ckpt_tables is not None and ckpt_tables.model_hash == identity:
        base = refit_tables(model, train, ckpt_tables, qualities=qualities, progress=not args.quiet)
        tables_note = "checkpoint quantizer, entropy tables refitted on the training frames"
    else:
        base = fit_codec(model, train, qualities=qualities, progress=not args.quiet)
        tables_note = "fitted on the training frames (the checkpoint had no tables for this model)"
    before = measure(model, base, qualities, held.reference, frames)
    _report("before", None, before, args)

    runs = []
    for lam in args.lambdas:
        tuned = copy.deepcopy(model)
        config = RateFinetuneConfig(
            lambda_rate=lam, quality=args.quality, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
            perceptual_weight=0.0 if args.no_perceptual else 10.0, seed=args.seed, data=pairs.config)
        start = time.perf_counter()
        result = finetune_rate(tuned, base, pairs, config, progress=not args.quiet)
        seconds = time.perf_counter() - start
        kept = refit_tables(tuned, train, base, qualities=qualities, progress=False)
        refit = fit_codec(tuned, train, qualities=qualities, progress=False)
        row = {"lambda": lam, "train_seconds": seconds, "steps": result.steps,
               "final_train": {k: result.mean_of_last(k) for k in result.history[0]},
               "kept_quantizer": measure(tuned, kept, qualities, held.reference, frames),
               "refit_quantizer": measure(tuned, refit, qualities, held.reference, frames)}
        runs.append(row)
        _report("kept", lam, row["kept_quantizer"], args)
        _report("refit", lam, row["refit_quantizer"], args)

    return {
        "checkpoint": str(args.ckpt), "model_hash": identity, "resolution": size, "token_dim": model.config.d_m,
        "video": video.name, "training_frames": train_names,
        "held_out": f"frames {held.indices[0]}..{held.indices[len(frames) - 1]} ({len(frames)} frames), "
                    f"reference = frame 0",
        "quality": args.quality, "eval_qualities": qualities, "tables": tables_note,
        "settings": {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                     "perceptual": not args.no_perceptual, "seed": args.seed},
        "bits_note": "ideal code length of the held-out quantized tokens under the integer tables (tokens only)",
        "machine": {"device": str(args.device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpu": platform.processor() or platform.machine(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "before": before, "runs": runs,
    }


def _report(name: str, lam: float | None, m: dict, args: argparse.Namespace) -> None:
    if args.quiet:
        return
    label = name if lam is None else f"λ={lam:g} {name}"
    for q, r in m["qualities"].items():
        print(f"{label:16s} q{q:>2s}: static {r['static_bits_per_frame']:6.1f} / temporal "
              f"{r['temporal_bits_per_frame']:6.1f} bits/frame, PSNR {r['psnr']:.2f} dB "
              f"(unquantized {m['unquantized']['psnr']:.2f})", file=sys.stderr)


def _default_video() -> Path:
    from imf.data.samples import sample_path

    return sample_path("WolfgangLanger_Pexels.mp4")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint folder (not modified)")
    p.add_argument("--video", default=None, help="clip (default: the sample WolfgangLanger_Pexels.mp4)")
    p.add_argument("--holdout", type=float, default=0.2, help="held-out last fraction of the clip (default 0.2)")
    p.add_argument("--max-frames", type=int, default=None, help="measure at most this many held-out frames")
    p.add_argument("--quality", type=int, default=6, help="quality trained for (default 6)")
    p.add_argument("--eval-qualities", type=_ints, default=None,
                   help="qualities measured (default: quality - 2, quality, quality + 2)")
    p.add_argument("--lambdas", type=_floats, default=[0.0, 0.01, 0.05], help="λ values (default 0,0.01,0.05)")
    p.add_argument("--steps", type=int, default=300, help="fine-tuning steps per λ (default 300)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of E_T (default 1e-4)")
    p.add_argument("--no-perceptual", action="store_true", help="L1 + rate only (much faster on a CPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--out", default="benchmarks/results/rate_finetune.json", help="output JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    if not 0.0 < args.holdout < 1.0:
        p.error("--holdout must be in (0, 1)")
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
