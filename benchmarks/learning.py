"""Proof that IMF learns: tiny-64 trained on the first 80% of the frames of the sample clip
``WolfgangLanger_Pexels.mp4`` on the CPU, measured every few minutes on the held-out last 20%
(reference = the clip's first frame) against the copy-the-reference baseline.

    python benchmarks/learning.py --minutes 30 --out runs/learning

Writes ``learning.json`` (the curve, machine, settings) and ``learning.png`` into --out after every
measurement, so an interrupted run still leaves its results. The run folder also holds checkpoints
(``--resume`` continues) and the final EMA model (``model/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from imf.data.dataset import held_out_frames
from imf.data.samples import sample_path
from imf.eval.heldout import held_out_scores
from imf.train.config import TrainConfig
from imf.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [c["minutes"] for c in curve]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(minutes, [c["psnr"] for c in curve], "o-", label="IMF tiny-64 (EMA)")
    ax[0].plot(minutes, [c["copy_psnr"] for c in curve], "--", label="copy the reference")
    ax[0].set(xlabel="training minutes (wall clock, CPU)", ylabel="held-out PSNR (dB)")
    ax[1].plot(minutes, [c["l1"] for c in curve], "o-", label="IMF tiny-64 (EMA)")
    ax[1].plot(minutes, [c["copy_l1"] for c in curve], "--", label="copy the reference")
    ax[1].set(xlabel="training minutes (wall clock, CPU)", ylabel="held-out L1")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.suptitle("IMF learning on WolfgangLanger_Pexels.mp4: last 20% of frames held out")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="training time budget (wall clock)")
    ap.add_argument("--eval-every", type=float, default=3.0, help="minutes between held-out measurements")
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny-64.yaml"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "learning"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    clip = sample_path("WolfgangLanger_Pexels.mp4")
    config = TrainConfig.from_yaml(args.config)
    config = config.replace_run(max_steps=10**9)
    out = Path(args.out)
    trainer = Trainer(config, [str(clip)], out, resume=args.resume)
    held = held_out_frames(clip, config.model.resolution, config.data.val_fraction)
    reference = torch.from_numpy(held.reference).permute(2, 0, 1).float() / 255  # (3, S, S)
    frames = torch.from_numpy(held.frames).permute(0, 3, 1, 2).float() / 255  # (N, 3, S, S)

    result_path = out / "learning.json"
    previous = json.loads(result_path.read_text()) if args.resume and result_path.exists() else None
    curve: list[dict] = previous["curve"] if previous else []
    offset = curve[-1]["minutes"] if curve else 0.0
    start = time.perf_counter()
    next_eval = [0.0]

    def measure() -> None:
        minutes = offset + (time.perf_counter() - start) / 60
        scores = held_out_scores(trainer.ema.model, reference, frames)
        recent = trainer.history[-20:]
        train_loss = sum(h["loss"] for h in recent) / len(recent) if recent else None
        curve.append({"minutes": round(minutes, 2), "step": trainer.step, "train_loss": train_loss, **scores})
        report = {
            "benchmark": "learning", "clip": clip.name, "held_out_frames": [held.indices[0], held.indices[-1]],
            "reference_frame": 0, "train_frames": f"0..{held.indices[0] - 1}", "config": config.to_dict(),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                        "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
            "curve": curve,
        }
        out.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps(report, indent=2))
        plot(curve, out / "learning.png")
        print(f"[{minutes:6.1f} min, step {trainer.step}] held-out PSNR {scores['psnr']:.2f} dB "
              f"(copy {scores['copy_psnr']:.2f}), L1 {scores['l1']:.4f} (copy {scores['copy_l1']:.4f})", flush=True)

    def callback(tr: Trainer) -> bool:
        elapsed = (time.perf_counter() - start) / 60
        if elapsed >= next_eval[0]:
            measure()
            next_eval[0] = elapsed + args.eval_every
        return elapsed >= args.minutes

    measure()
    next_eval[0] = args.eval_every
    trainer.fit(callback=callback)
    measure()
    trainer.close()


if __name__ == "__main__":
    main()
