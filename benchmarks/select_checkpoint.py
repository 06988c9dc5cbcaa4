"""Pick a run's checkpoint by its own validation split, never by a held-out split.

    python benchmarks/select_checkpoint.py --run runs/corpus-tiny-64-lr5e-4 --data data/corpus64/train

Scores the EMA generator of every ``RUN/checkpoints/step_*.pt`` (fp32) on all pairs of the run's validation
split (the last ``data.val_fraction`` of each training clip, drawn as ``Trainer.validate`` draws them,
``SeededItems(seed=12345)``), prints PSNR of the mean MSE and L1 per checkpoint and the best one. This is how
the shipped model's checkpoint was chosen (benchmarks/results/learning_corpus_v2/checkpoint_selection.txt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from imf.config import IMFConfig
from imf.data.dataset import PairDataset
from imf.eval.metrics import psnr_of_mse
from imf.models.imf import IMF
from imf.train.config import TrainConfig
from imf.train.trainer import SeededItems


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run folder of `imf train` (config.yaml, checkpoints/)")
    ap.add_argument("--data", nargs="+", required=True, help="the run's training data, as given to `imf train`")
    ap.add_argument("--min-step", type=int, default=0, help="skip checkpoints before this step")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    config = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    seeded = SeededItems(PairDataset(args.data, config.data, split="val", augment=False, progress=False), seed=12345)
    items = [seeded[(0, i)] for i in range(len(seeded))]
    x_r = torch.stack([it["reference"] for it in items])  # (N, 3, S, S)
    x_c = torch.stack([it["current"] for it in items])
    print(f"{len(items)} validation pairs")
    best = None
    for path in sorted((run / "checkpoints").glob("step_*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["step"] < args.min_step:
            continue
        model = IMF(IMFConfig.from_dict(json.loads(state["config"])["model"]))
        model.load_state_dict(state["ema"])
        with torch.inference_mode():
            y = torch.cat([model.eval()(x_c[i:i + 32], x_r[i:i + 32]).float() for i in range(0, len(items), 32)])
        mse = float((y - x_c).pow(2).mean())
        psnr = psnr_of_mse(mse)
        print(f"{path} val PSNR(mean MSE) {psnr:.3f} L1 {float((y - x_c).abs().mean()):.4f}", flush=True)
        if best is None or psnr > best[1]:
            best = (path, psnr)
    if best:
        print(f"best: {best[0]} ({best[1]:.3f} dB)")


if __name__ == "__main__":
    main()
