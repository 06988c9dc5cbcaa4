"""Can the cross-attention learn motion from its positional-embedding init? A controlled probe on a synthetic
clip, minutes per variant on a CPU.

    python benchmarks/pos_init_probe.py --std 1.5 --length 0 [--steps 400] [--threads 1] \\
        [--out benchmarks/results/pos_init_probe.json]

Each call trains tiny-64 from seed 0 on a moving-disc clip (``tests/train_helpers.moving_blob_clip``, 48
frames, the disc crossing 32 px; frames split 75/25, reference anywhere before the tail) with P_q, P_k drawn
at ``--std`` (``model.pos_embed_init_std``) and ``--length`` (``model.pos_embed_init_length``: 0 independent
per position, > 0 smooth), 10·L1 + 10·VGG, no GAN, lr 5e-4, batch 8, bf16 autocast, then scores the raw
generator, reference = frame 0:
- ``tail``: PSNR of the model and of copying the reference on the clip's held-out last 25%, and the output
  motion ratio (``imf.eval.generalisation``);
- ``other_clip``: the same on a second disc clip of another seed (other colours and path), never trained on;
- ``shift_followed``: ``shift_test`` on the tail's reference (1 = the output moves with a shifted input);
- ``pos_q_minus_k_std``: how far P_q and P_k moved apart from their shared draw, per scale (0 = no gradient
  reached them: a softmax saturated on the diagonal passes none).
Results are merged into ``--out`` under the variant's name (``std{S}_len{L}_steps{N}``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--std", type=float, required=True, help="pos_embed_init_std")
    ap.add_argument("--length", type=float, default=0.0, help="pos_embed_init_length (0: independent draws)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pos_init_probe.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "tests"))
    from train_helpers import moving_blob_clip

    from imf.bench.machine import machine_info
    from imf.data.video import iter_frames
    from imf.eval.generalisation import Clip, evaluate_clip, shift_test
    from imf.train.config import TrainConfig
    from imf.train.trainer import Trainer

    d = pathlib.Path(tempfile.mkdtemp())
    moving_blob_clip(d / "blob.mp4", n=48)
    moving_blob_clip(d / "other.mp4", n=48, seed=3)
    config = TrainConfig.from_dict({
        "model": {"preset": "tiny-64", "pos_embed_init_std": args.std, "pos_embed_init_length": args.length},
        "data": {"split_by": "frames", "val_fraction": 0.25, "hflip_prob": 0.5, "max_distance": None},
        "loss": {"gan": 0.0, "perceptual_scales": [1.0, 0.5]},
        "optim": {"lr": 5e-4, "warmup_steps": 20, "ema_decay": 0.99},
        "run": {"batch_size": 8, "max_steps": args.steps, "num_workers": 0, "val_every": 100000,
                "image_every": 100000, "checkpoint_every": 100000, "log_every": 50, "precision": "bf16",
                "seed": 0}})
    start = time.time()
    trainer = Trainer(config, [str(d / "blob.mp4")], d / "run", progress=False)
    trainer.fit()
    seconds = time.time() - start
    model = trainer.generator.eval()

    def frames_of(path):
        return torch.from_numpy(np.stack(list(iter_frames(path)))).permute(0, 3, 1, 2).float() / 255  # (N, 3, S, S)

    frames = frames_of(d / "blob.mp4")
    tail = Clip("tail", "disc", torch.cat([frames[:1], frames[36:]]))  # the reference and the held-out 25%
    other = Clip("other", "disc2", frames_of(d / "other.mp4"))
    r, o = evaluate_clip(model, tail), evaluate_clip(model, other)
    with torch.no_grad():
        moved = [float((s.pos_q - s.pos_k).std()) for s in model.motion_alignment.scales]
    result = {"std": args.std, "length": args.length, "steps": args.steps, "seconds": round(seconds),
              "tail": {"model_psnr": r["model"]["psnr"], "copy_psnr": r["copy"]["psnr"],
                       "motion_ratio": r["motion"]["ratio"]},
              "other_clip": {"model_psnr": o["model"]["psnr"], "copy_psnr": o["copy"]["psnr"],
                             "motion_ratio": o["motion"]["ratio"]},
              "shift_followed": shift_test(model, [tail], shifts=(2, 4, 8))["followed"],
              "pos_q_minus_k_std": moved,
              "loss_first_last_10": [sum(h["loss"] for h in trainer.history[:10]) / 10,
                                     sum(h["loss"] for h in trainer.history[-10:]) / 10],
              "threads": args.threads, "machine": machine_info(torch.device("cpu"))}
    out = pathlib.Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {"benchmark": "pos_init_probe",
                                                              "protocol": __doc__, "variants": {}}
    data["variants"][f"std{args.std:g}_len{args.length:g}_steps{args.steps}"] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, out)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}))


if __name__ == "__main__":
    main()
