"""Look at the frames: several models rebuild the same frames of one clip from the same reference, side by side.

    python benchmarks/compare_frames.py data/corpus64/heldout_people/cap13_edit2_000.mp4 \\
        --models shipped runs/corpus-tiny-64-smoothpos/checkpoints/step_00003000.pt \\
        --labels v2 "smooth P, 3000" --out benchmarks/results/learning_corpus_smoothpos/frames_cap13.png

Row 1: the reference (frame ``--ref``) and ``--count`` evenly spaced frames after it (the truth). Then one row
per model: the reference again, and each frame rebuilt from its own token and the reference (fp32, the
``Pipeline.reconstruct`` path). A model is ``shipped`` (the installed default), a model folder
(``save_pretrained``), or a training checkpoint ``step_*.pt`` (its EMA generator, as the run exports it).
Each row's label and its mean PSNR over the shown frames are written to the JSON beside the PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def load(spec: str):
    """An IMF model in eval mode from 'shipped', a model folder or a training checkpoint file."""
    from imf.assets import shipped_model_path
    from imf.checkpoint import load_model
    from imf.train.checkpointing import load_ema_generator

    if spec == "shipped":
        return load_model(shipped_model_path()).eval()
    if Path(spec).is_file():
        return load_ema_generator(spec)[0].eval()
    return load_model(spec).eval()


def main(argv: list[str] | None = None) -> None:
    from PIL import Image, ImageDraw

    from imf.data.video import iter_frames
    from imf.eval.metrics import psnr_uint8
    from imf.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", help="video file or frame folder")
    ap.add_argument("--models", nargs="+", required=True, help="'shipped', model folders or step_*.pt checkpoints")
    ap.add_argument("--labels", nargs="+", default=None, help="one label per model (default: the specs)")
    ap.add_argument("--ref", type=int, default=0, help="reference frame index")
    ap.add_argument("--count", type=int, default=7, help="frames shown after the reference")
    ap.add_argument("--scale", type=int, default=3, help="pixel zoom of the PNG")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, help="PNG path (a JSON of the same name is written beside it)")
    args = ap.parse_args(argv)
    labels = args.labels or args.models
    if len(labels) != len(args.models):
        ap.error(f"{len(args.models)} models but {len(labels)} labels")
    torch.set_num_threads(args.threads)

    models = [load(m) for m in args.models]
    sizes = {m.config.resolution for m in models}
    if len(sizes) != 1:
        ap.error(f"the models make frames of different sizes: {sorted(sizes)}")
    size = sizes.pop()
    frames = list(iter_frames(args.clip, size=size))
    if not 0 <= args.ref < len(frames) - 1:
        ap.error(f"--ref must lie in [0, {len(frames) - 2}] for this clip of {len(frames)} frames")
    shown = np.linspace(args.ref + 1, len(frames) - 1, min(args.count, len(frames) - 1 - args.ref)).astype(int)
    reference = frames[args.ref]
    rows = [[reference] + [frames[i] for i in shown]]
    scores = {}
    for label, model in zip(labels, models):
        rebuilt = list(Pipeline(model, device="cpu", precision="fp32").reconstruct([frames[i] for i in shown],
                                                                                   reference))
        rows.append([reference] + rebuilt)
        scores[label] = float(np.mean([psnr_uint8(r, frames[i]) for r, i in zip(rebuilt, shown)]))
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)  # (rows·S, (count+1)·S, 3)
    image = Image.fromarray(grid).resize((grid.shape[1] * args.scale, grid.shape[0] * args.scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    for k, text in enumerate(["truth"] + [f"{l}: {scores[l]:.2f} dB" for l in labels]):
        draw.text((4, k * size * args.scale + 2), text, fill=(255, 255, 0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    info = {"clip": str(args.clip), "reference": args.ref, "frames": shown.tolist(), "models": dict(zip(labels, args.models)),
            "mean_psnr_db": scores}
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print("\n".join(f"{l}: {v:.2f} dB" for l, v in scores.items()) + f"\nwrote {out}")


if __name__ == "__main__":
    main()
