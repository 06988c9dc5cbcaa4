"""Codec figures for the closing note: token bits per frame (static vs temporal entropy model) at three
token qualities, keyframe bytes, total kbps, PSNR, and encode / decode frames per second.

Usage::

    python benchmarks/codec.py --ckpt RUN/ckpt [--video CLIP.mp4] [--holdout 0.2] \\
        [--qualities 3,6,9] [--out benchmarks/results/codec.json]

Frames: the last ``--holdout`` fraction of the clip (default: the sample clip WolfgangLanger_Pexels.mp4,
last 20%), centre-cropped and resized to the model's resolution. Entropy tables: the checkpoint's own
(``imf codec fit``) if they were fitted for this model, else fitted here on the clip's first
``1 - holdout`` part (in memory; the checkpoint is not modified). The JSON says which.
Works with any checkpoint (an untrained one gives meaningless quality but valid rates and timings).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from imf.eval.metrics import psnr_uint8


def _pick_qualities(available: tuple[int, ...], asked: list[int] | None) -> list[int]:
    if asked:
        missing = [q for q in asked if q not in available]
        if missing:
            sys.exit(f"qualities {missing} are not in the tables ({list(available)})")
        return asked
    if len(available) <= 3:
        return list(available)
    return [available[len(available) // 5], available[len(available) // 2], available[(4 * len(available)) // 5]]


def run(args: argparse.Namespace) -> dict:
    import imf
    from imf.codec import decode_file, encode_frames, fit_codec, has_tables, load_tables
    from imf.codec.keyframe import encode_keyframe, keyframe_codec_available
    from imf.data.video import iter_frames, probe

    torch.set_num_threads(args.threads)
    model = imf.load_model(args.ckpt, map_location=args.device).eval()
    identity = imf.model_hash(model)
    size = model.config.resolution
    video = Path(args.video) if args.video else _default_video()
    info = probe(video)
    split = int(round((1.0 - args.holdout) * info.num_frames))
    stop = info.num_frames if args.max_frames is None else min(info.num_frames, split + args.max_frames)
    frames = np.stack(list(iter_frames(video, size=size, start=split, stop=stop)))  # (T, S, S, 3)

    tables = load_tables(args.ckpt) if has_tables(args.ckpt) else None
    if tables is not None and tables.model_hash == identity:
        tables_source = {"from": "checkpoint", "info": tables.info}
    else:
        tables = fit_codec(model, [video], fraction=(0.0, 1.0 - args.holdout), progress=not args.quiet)
        tables_source = {"from": f"fitted by this benchmark on the first {1 - args.holdout:.0%} of the clip",
                         "info": tables.info}
    qualities = _pick_qualities(tables.qualities, args.qualities)

    results = []
    with tempfile.TemporaryDirectory(prefix="imf-codec-bench-") as tmp:
        for entropy in ("static", "temporal"):
            for q in qualities:
                path = Path(tmp) / f"{entropy}_q{q}.imf"
                stats = encode_frames(model, iter(frames), path, fps=info.fps, tables=tables, quality=q,
                                      entropy=entropy, keyframe_codec=args.keyframe_codec,
                                      keyframe_quality=args.keyframe_quality, total=len(frames),
                                      progress=not args.quiet)
                start = time.perf_counter()
                decoded = list(decode_file(path, model, tables=tables, model_hash=identity))
                decode_seconds = time.perf_counter() - start
                psnrs = [psnr_uint8(d, f) for d, f in zip(decoded, frames)]
                row = stats.to_dict()
                row.update(decode_seconds=decode_seconds, decode_fps=len(decoded) / decode_seconds,
                           psnr_mean=float(np.mean([p for p in psnrs if np.isfinite(p)] or [float("inf")])),
                           keyframe_bytes=stats.keyframe_bits // 8)
                results.append(row)
                if not args.quiet:
                    print(f"{entropy:8s} q{q:<2d} tokens {row['token_bits_per_frame']:7.1f} bits/frame "
                          f"({row['kbps_tokens']:.3f} kbps), keyframes {row['keyframe_bytes']} B, "
                          f"total {row['kbps_total']:.2f} kbps, PSNR {row['psnr_mean']:.2f} dB, "
                          f"enc {row['encode_fps']:.1f} / dec {row['decode_fps']:.1f} fps", file=sys.stderr)

    keyframe_sizes = {codec: len(encode_keyframe(frames[0], codec=codec, quality=args.keyframe_quality))
                      for codec in ("webp", "avif") if keyframe_codec_available(codec)}
    return {
        "checkpoint": str(args.ckpt), "model_hash": identity, "resolution": size, "token_dim": model.config.d_m,
        "video": video.name, "fps": info.fps, "frames": f"{split}..{stop - 1} of {info.num_frames} (held out)",
        "num_frames": len(frames), "tables": tables_source, "tables_identity": tables.identity(),
        "qualities": qualities, "keyframe_codec": args.keyframe_codec, "keyframe_quality": args.keyframe_quality,
        "first_keyframe_bytes_by_codec": keyframe_sizes,
        "bits_note": "token bits = entropy-coded token packets (the paper's count); total = every bit of the file",
        "machine": {"device": str(args.device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpu": platform.processor() or platform.machine(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "results": results,
    }


def _default_video() -> Path:
    from imf.data.samples import sample_path

    return sample_path("WolfgangLanger_Pexels.mp4")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint folder")
    p.add_argument("--video", default=None, help="clip to code (default: the sample WolfgangLanger_Pexels.mp4)")
    p.add_argument("--holdout", type=float, default=0.2, help="held-out last fraction of the clip (default 0.2)")
    p.add_argument("--max-frames", type=int, default=None, help="code at most this many held-out frames")
    p.add_argument("--qualities", type=lambda s: [int(v) for v in s.split(",")], default=None,
                   help="three token qualities (default: low, middle and high fitted levels)")
    p.add_argument("--keyframe-codec", default="webp", choices=("webp", "avif"), help="keyframe codec")
    p.add_argument("--keyframe-quality", type=int, default=90, help="keyframe codec quality 0..100")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--out", default="benchmarks/results/codec.json", help="output JSON")
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
