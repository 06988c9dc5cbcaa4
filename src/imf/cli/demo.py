"""``imf demo``: the main job on built-in defaults (the README's first command).

1. A person the model never saw: carphone's man (``carphone_pristine.mp4``, held out of the corpus
   entirely) is face-cropped at the model's resolution with the corpus's cropper (``imf.data.crop``,
   the settings of ``imf data corpus``), rebuilt with reference = its first frame (a side-by-side video),
   and scored against copying the reference (PSNR, L1, LPIPS alex) on every other frame.
2. Held-out frames of a training person: the last 20 % of the Pexels clip (the corpus's held-out tail,
   never in training), cropped the same way, reference = the tail's first frame, scored the same way.
3. The codec on the carphone crop: encode to ``.imf`` and decode back to mp4.

Everything goes to ``--out`` (the crops under ``crops/``) with the figures in ``demo.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from imf.cli.common import add_device, add_quiet, default_device, quality_level

HELD_OUT_PERSON = ("carphone_pristine.mp4", "carphone_man")
TRAINING_PERSON = ("WolfgangLanger_Pexels.mp4", "pexels_woman")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on sample clips with the shipped model",
                       description="Rebuild a person the model never saw (carphone) and held-out frames of a "
                                   "training person (the Pexels clip's tail) from face crops, score both "
                                   "against copying the reference, encode and decode the first with the codec.")
    p.add_argument("--ckpt", metavar="DIR", default=None, help="a model folder (default: the shipped model)")
    p.add_argument("--out", metavar="DIR", default="outputs/demo", help="where outputs go (default: outputs/demo)")
    p.add_argument("--quality", type=quality_level, default=None, help="codec quality level (default: the codec's default)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="only the first N frames of each clip part (N >= 8)")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run)


def _face_crop(clip: Path, out: Path, size: int, start: int, stop: int | None, name: str):
    """The longest face segment of frames [start, stop) of ``clip``, cropped as ``imf data corpus`` does
    (``CropConfig`` defaults at ``size``, ``FaceDetector(min_face=...)``). InputError if none."""
    from imf.data.crop import CropConfig, crop_video
    from imf.data.face_detect import FaceDetector
    from imf.errors import InputError

    cfg = CropConfig(size=size)
    result = crop_video(clip, out, cfg, FaceDetector(min_face=cfg.min_face), progress=False,
                        start=start, stop=stop, name=name)
    if not result.clips:
        raise InputError(f"{clip.name}: no face segment in frames [{start}, {stop}): {'; '.join(result.skipped)}")
    return max(result.clips, key=lambda c: c.stop - c.start)


def _score(model, crop_path: Path, size: int, lpips) -> dict[str, float]:
    """Model against copy-the-reference on frames 1..N-1 of a crop, reference = its frame 0, with the
    held-out protocol of ``imf.eval.generalisation`` (PSNR of the mean MSE, as the model card reports)."""
    import numpy as np

    from imf.data.video import iter_frames, to_tensor
    from imf.eval.generalisation import Clip, evaluate_clip

    frames = to_tensor(np.stack(list(iter_frames(crop_path, size=size))))  # (N, 3, S, S)
    scores = evaluate_clip(model, Clip(crop_path.name, "", frames), lpips=lpips)
    return {prefix + metric: scores[method][metric] for prefix, method in (("", "model"), ("copy_", "copy"))
            for metric in ("psnr", "l1", "lpips")}


def _print_scores(scores: dict[str, float]) -> None:
    for label, p in (("IMF", ""), ("copy the reference", "copy_")):
        print(f"  {label:<18}  PSNR {scores[p + 'psnr']:6.2f} dB  L1 {scores[p + 'l1']:.4f}  "
              f"LPIPS(alex) {scores[p + 'lpips']:.4f}")


def _part(model, clip: Path, person: str, out: Path, size: int, start: int, stop: int | None, name: str,
          lpips, video: str) -> dict:
    from imf.pipeline import reconstruct_video

    crop = _face_crop(clip, out / "crops", size, start, stop, name)
    scores = _score(model, crop.path, size, lpips)
    recon = reconstruct_video(model, crop.path, out / video, compare=True, progress=False)
    return {"clip": clip.name, "person": person, "crop": str(crop.path), "source_frames": [crop.start, crop.stop],
            "box": [crop.box.x, crop.box.y, crop.box.side], "reference": "frame 0 of the crop",
            "scored_frames": crop.stop - crop.start - 1, "scores": scores, "reconstruction": str(recon.output)}


def run(args: argparse.Namespace) -> int:
    from imf.assets import shipped_model_path
    from imf.checkpoint import load_model
    from imf.codec.decoder import decode_file
    from imf.codec.encoder import DEFAULT_QUALITY, encode_frames
    from imf.codec.tables import has_tables, load_tables
    from imf.data.corpus import train_cut
    from imf.data.samples import sample_path
    from imf.data.video import VideoWriter, iter_frames, probe
    from imf.errors import InputError
    from imf.eval.lpips import LPIPS

    if args.max_frames is not None and args.max_frames < 8:
        raise InputError(f"--max-frames must be at least 8 (the cropper's shortest segment), got {args.max_frames}")
    t0 = time.perf_counter()
    ckpt = Path(args.ckpt) if args.ckpt else shipped_model_path()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"model: {ckpt}")
    device = default_device(args.device)
    model = load_model(ckpt, map_location=device)
    s = model.config.resolution
    lpips = LPIPS("alex").to(device)
    limit = args.max_frames

    # 1. a held-out person: every frame (or the first --max-frames), reference = frame 0
    clip = sample_path(HELD_OUT_PERSON[0])
    person = _part(model, clip, HELD_OUT_PERSON[1], out, s, 0, limit, Path(clip.name).stem, lpips,
                   "carphone_reconstruction.mp4")
    a, b = person["source_frames"]
    print(f"held-out person (never in training): {clip.name} frames {a}..{b - 1}, face crop {s}x{s} "
          f"-> {person['crop']}")
    print(f"  reference | original | reconstruction: {person['reconstruction']}")
    print(f"  frames {a + 1}..{b - 1} (reference = frame {a}):")
    _print_scores(person["scores"])

    # 2. held-out frames of a training person: the corpus's tail of the Pexels clip (the last 20 %)
    tail_clip = sample_path(TRAINING_PERSON[0])
    n = probe(tail_clip).num_frames
    cut = train_cut(n)  # as imf.data.corpus: frames [cut, n) are never in training
    tail = _part(model, tail_clip, TRAINING_PERSON[1], out, s, cut, n if limit is None else min(n, cut + limit),
                 f"{Path(tail_clip.name).stem}_tail", lpips, "pexels_tail_reconstruction.mp4")
    a, b = tail["source_frames"]
    print(f"held-out frames of a training person: {tail_clip.name} frames {a}..{b - 1} (its last 20%, never in "
          f"training), face crop -> {tail['crop']}")
    print(f"  frames {a + 1}..{b - 1} (reference = frame {a}):")
    _print_scores(tail["scores"])

    # 3. the codec on the held-out person's crop: encode to .imf and decode back to mp4
    result = {"model": str(ckpt), "resolution": s, "held_out_person": person, "held_out_frames": tail}
    if has_tables(ckpt):
        tables = load_tables(ckpt)
        quality = args.quality if args.quality is not None else DEFAULT_QUALITY
        crop_path = Path(person["crop"])
        info = probe(crop_path)
        stats = encode_frames(model, iter_frames(crop_path, size=s), out / "clip.imf", fps=info.fps,
                              tables=tables, quality=quality, total=info.num_frames,
                              progress=not args.quiet)
        print(f"codec on {crop_path.name}:", stats.summary())
        with VideoWriter(out / "decoded.mp4", info.fps, s, s) as writer:
            for frame in decode_file(out / "clip.imf", model, tables=tables):
                writer.write(frame)
        print(f"decoded: {out / 'decoded.mp4'}")
        result["codec"] = stats.to_dict()
    else:
        print(f"codec: skipped ({ckpt} has no codec tables; make them with `imf codec fit`)")
    (out / "demo.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"outputs in {out}/ ({time.perf_counter() - t0:.0f} s)")
    return 0
