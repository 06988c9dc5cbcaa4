"""``imf train``: train IMF from a YAML config (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from imf.cli.common import add_device, add_quiet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train IMF on video clips (one process, or many under torchrun)",
        description="Train IMF with the paper's recipe (10·L1 + 10·VGG + 1·GAN, Adam, EMA). The same command "
                    "runs under `torchrun --nproc_per_node=K -m imf.cli train ...` for DDP, on one or many nodes.")
    p.add_argument("--config", required=True, metavar="FILE", help="training YAML (see configs/*.yaml)")
    p.add_argument("--data", required=True, nargs="+", metavar="PATH",
                   help="video files, frame folders, folders of clips, or .txt lists of clips; or shard folders "
                        "of `imf data prepare` (streamed: each rank and worker reads its own shards)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoints, TensorBoard, final model")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="RUN already holds a run: remove its checkpoints, model and logs and start over")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="override run.max_steps")
    p.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="stop after M minutes of training (wall clock from the start of the training loop; loading "
                        "the data before it is not counted), with a checkpoint and the exported RUN/model as at "
                        "max_steps; the learning-rate schedule still follows max_steps")
    add_device(p)
    add_quiet(p)
    p.add_argument("--seed", type=int, default=None, help="override run.seed")
    p.add_argument("--num-workers", type=int, default=None, help="override run.num_workers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imf.errors import InputError
    from imf.train.config import TrainConfig
    from imf.train.run_folder import prepare_run_folder
    from imf.train.trainer import Trainer

    if args.max_minutes is not None and not args.max_minutes > 0:
        raise InputError(f"--max-minutes must be > 0, got {args.max_minutes}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = TrainConfig.from_yaml(args.config)
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("seed", args.seed),
                                   ("num_workers", args.num_workers)) if v is not None}
    if overrides:
        config = config.replace_run(**overrides)
    from imf.devices import resolve_device

    resolve_device(args.device)  # an absent device is refused before --overwrite removes anything
    missing = [p for p in args.data if not Path(p).exists()]
    if missing:  # before --overwrite removes anything
        raise InputError(f"--data {missing[0]}: no such file or folder")
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 checks (and clears) the folder
        prepare_run_folder(args.out, resume=args.resume, overwrite=args.overwrite)
    trainer = Trainer(config, args.data, args.out, resume=args.resume, device=args.device,
                      progress=not args.quiet)
    try:
        summary = trainer.fit(max_minutes=args.max_minutes)
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(json.dumps(summary, indent=2))
    return 0
