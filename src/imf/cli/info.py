"""``imf info``: parameters per part, feature shapes and FLOPs per frame."""

from __future__ import annotations

import argparse

from imf.cli.common import add_json, emit_json
from imf.config import PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters per part, feature shapes and FLOPs per frame",
                       description="Print parameters per part, feature shapes and FLOPs per frame "
                                   "(per reference and per frame) of a preset, a checkpoint or the model of a "
                                   "training config. Counted on the CPU without running the model, so there is "
                                   "no --device.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=PRESETS, default=None, help="a built-in preset (default: paper-256)")
    src.add_argument("--ckpt", metavar="DIR", help="a checkpoint folder (config.json + model.safetensors)")
    src.add_argument("--config", metavar="FILE", help="the model of a training YAML (e.g. configs/ablation-*.yaml)")
    add_json(p, "the summary (instead of the table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imf.checkpoint import read_config
    from imf.config import IMFConfig
    from imf.info import format_summary, model_summary
    from imf.models.imf import IMF

    if args.ckpt:
        config, name = read_config(args.ckpt), str(args.ckpt)
    elif args.config:
        from imf.train.config import TrainConfig

        config, name = TrainConfig.from_yaml(args.config).model, str(args.config)
    else:
        name = args.preset or "paper-256"
        config = IMFConfig.preset(name)
    summary = model_summary(IMF(config))
    summary["name"] = name
    if not emit_json(args.json, summary):
        print(format_summary(summary, name))
    return 0
