"""``imf codec finetune``: rate-aware fine-tuning of E_T (:mod:`imf.train.rate`).

Added under ``imf codec`` by :func:`imf.cli.codec.register` through :func:`add_parser`.
"""

from __future__ import annotations

import argparse

from imf.cli.common import add_batch_size, add_device, add_quiet, default_device, quality_level


def _fraction_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_parser(csub: argparse._SubParsersAction) -> None:
    """Add ``finetune`` to the ``imf codec`` subcommands."""
    from imf.codec.quantizer import DEFAULT_QUALITY
    from imf.train.rate import RateFinetuneConfig

    d = RateFinetuneConfig()
    p = csub.add_parser(
        "finetune", help="rate-aware fine-tuning of the token encoder for a quality and rate trade-off",
        description="Fine-tune the latent token encoder E_T (everything else frozen) with a quantization-noise "
                    "proxy and loss = 10·L1 + 10·VGG + λ·bits per frame at one quality, then save the model with "
                    "refitted codec tables into a new checkpoint folder that `imf encode` can use.")
    p.add_argument("--ckpt", metavar="DIR", required=True, help="checkpoint folder to start from (not modified)")
    p.add_argument("--data", metavar="PATH", nargs="+", required=True,
                   help="training videos, frame folders, folders of them, or .txt lists")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the fine-tuned checkpoint and its tables")
    p.add_argument("--lambda", dest="lambda_rate", type=float, required=True, metavar="L",
                   help="weight λ of one token bit per frame in the loss (0: quantization robustness only; "
                        "around 0.001-0.1 trades rate for quality)")
    p.add_argument("--quality", type=quality_level, default=DEFAULT_QUALITY, metavar="Q",
                   help=f"codec quality level whose quantization steps are trained for (default {DEFAULT_QUALITY})")
    p.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N",
                   help=f"optimisation steps (default {d.max_steps})")
    add_batch_size(p, d.batch_size, "pairs per training step")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate of E_T (default {d.lr:g})")
    p.add_argument("--no-perceptual", action="store_true",
                   help="drop the VGG perceptual term (about 10x faster on a CPU; L1 and rate only)")
    p.add_argument("--refit-quantizer", action="store_true",
                   help="refit the tables' per-dimension spread on the new tokens too (default: keep the "
                        "quantization steps the fine-tuning was trained for)")
    p.add_argument("--holdout", type=_fraction_arg, default=0.0, metavar="F",
                   help="leave the last F of every clip out of training and table fitting (default 0)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    from imf.train.rate import FINETUNE_JSON, RateFinetuneConfig, finetune_checkpoint
    from imf.data.dataset import DataConfig

    config = RateFinetuneConfig(
        lambda_rate=args.lambda_rate, quality=args.quality, max_steps=args.max_steps, batch_size=args.batch_size,
        lr=args.lr, perceptual_weight=0.0 if args.no_perceptual else RateFinetuneConfig.perceptual_weight,
        keep_quantizer=not args.refit_quantizer, seed=args.seed,
        data=DataConfig(split_by="frames", val_fraction=args.holdout, hflip_prob=0.0))
    device = default_device(args.device)
    outcome = finetune_checkpoint(args.ckpt, args.data, args.out, config, device=device, progress=not args.quiet)
    r = outcome.result
    print(f"fine-tuned E_T for {r.steps} steps (λ={config.lambda_rate:g}, quality {config.quality}); "
          f"final L1 {r.mean_of_last('l1'):.4f}, rate-model bits/frame {r.mean_of_last('bits_rounded'):.1f}")
    print(f"token bits/frame on the training frames at quality {config.quality}: "
          f"static {outcome.rate_before['static']:.1f} -> {outcome.rate_after['static']:.1f}, "
          f"temporal {outcome.rate_before['temporal']:.1f} -> {outcome.rate_after['temporal']:.1f}")
    print(f"wrote {outcome.out} (model {outcome.model_hash_after[:16]}, codec tables, {FINETUNE_JSON}); "
          f"base quantizer: {outcome.tables_source}")
    return 0
