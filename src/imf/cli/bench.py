"""``imf bench``: speed and memory per preset and stage, against this machine's own matmul peak.

Only parses arguments and calls :mod:`imf.bench`; ``benchmarks/speed.py`` uses the same parser.
"""

from __future__ import annotations

import argparse

from imf.cli.common import add_device, add_json, add_precision, add_quiet, default_device, emit_json
from imf.config import PRESETS


def _csv_presets(text: str) -> tuple[str, ...]:
    from imf.errors import ConfigError

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in PRESETS]
    if bad or not names:
        raise ConfigError(f"unknown preset(s) {', '.join(bad) or repr(text)}; choose from {', '.join(PRESETS)}")
    return names


def _csv_ints(text: str, name: str) -> tuple[int, ...]:
    from imf.errors import ConfigError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ConfigError(f"{name} must be a comma-separated list of positive integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", default="tiny-64,small-128,paper-256",
                   help=f"comma-separated presets to measure ({', '.join(PRESETS)}; "
                        "default: tiny-64,small-128,paper-256)")
    p.add_argument("--batches", default="1,8", help="comma-separated decode batch sizes (default: 1,8)")
    add_device(p)
    add_precision(p, "fp32")  # of the model's calls; the peak is measured in the same dtype
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice, one per core)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per measurement; the median is kept")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before each measurement")
    p.add_argument("--stream-frames", type=int, default=8,
                   help="frames for the streaming-vs-forward comparison (default: 8)")
    p.add_argument("--train-presets", default="tiny-64,small-128",
                   help="presets whose training step is timed ('none' to skip; default: tiny-64,small-128)")
    p.add_argument("--train-batch", type=int, default=16, help="training batch size (default: 16)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-compare", action="store_true", help="skip the A/B timings of each fast path")
    p.add_argument("--plain", action="store_true",
                   help="measure the model as built, without optimize_for_inference (channels-last convs)")
    p.add_argument("--peak-seconds", type=float, default=3.0,
                   help="how long the fp32 matmul peak is measured (default: 3 s)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 repeat, batches capped at 2, 2 streamed frames, training batch 2")
    add_json(p, "the results (a file is rewritten after each preset)")
    add_quiet(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and memory per preset and stage",
                       description="Time every stage of IMF (E_T, E_F, IMF_D, IMF_A per scale, D_F; per reference "
                                   "and per frame) at several batch sizes, against this machine's fp32 matmul "
                                   "peak; streaming decode against forward per frame; peak memory of decoding; "
                                   "training samples/s. Prints a table; --json writes everything.")
    add_arguments(p)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace):
    import torch

    from imf.bench import BenchOptions
    from imf.errors import ConfigError, InputError

    for name in ("repeats", "stream_frames", "train_batch"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise ConfigError(f"--warmup must be >= 0, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    args.device = default_device(args.device)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ConfigError(f"--device {args.device!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: CUDA is not available on this machine")
    train = () if args.train_presets.strip().lower() == "none" else _csv_presets(args.train_presets)
    return BenchOptions(presets=_csv_presets(args.presets), batches=_csv_ints(args.batches, "--batches"),
                        device=args.device, threads=args.threads, repeats=args.repeats, warmup=args.warmup,
                        stream_frames=args.stream_frames, memory=not args.no_memory, train_presets=train,
                        train_batch=args.train_batch, peak_seconds=args.peak_seconds, quick=args.quick,
                        fast=not args.plain, compare=not args.no_compare,
                        precision=getattr(args, "precision", "fp32"))


def run(args: argparse.Namespace) -> int:
    from imf.progress import progress_bar

    from imf.bench import format_report, run_benchmark, write_json

    options = options_from_args(args)
    bar = progress_bar(desc="bench", bar_format="{desc}: {n} steps [{elapsed}] {postfix}",
                       enabled=not getattr(args, "quiet", False))

    def progress(msg: str) -> None:
        bar.set_postfix_str(msg)
        bar.update(1)

    to_file = args.json not in (None, "-")
    checkpoint = (lambda result: write_json(result, args.json)) if to_file else None
    result = run_benchmark(options, progress=progress, checkpoint=checkpoint)
    bar.close()
    if to_file:
        write_json(result, args.json)
    elif args.json == "-":
        emit_json("-", result)
        return 0
    print(format_report(result))
    return 0
