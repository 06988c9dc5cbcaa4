"""``imf demo``: the main job on built-in defaults (the README's first command).

Fetches the sample clip, reconstructs it with the shipped model (reference = first frame), scores the
held-out frames against the copy-the-reference baseline, codes the clip with the IMF codec, decodes it,
and prints where everything is.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the sample clip with the shipped model",
                       description="Fetch the sample clip, reconstruct it with the shipped model, score held-out "
                                   "frames against copying the reference, encode and decode it with the IMF codec.")
    p.add_argument("--ckpt", metavar="DIR", default=None, help="a model folder (default: the shipped tiny-64 model)")
    p.add_argument("--out", metavar="DIR", default="outputs/demo", help="where outputs go (default: outputs/demo)")
    p.add_argument("--quality", type=int, default=None, help="codec quality level (default: the codec's default)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="only the first N frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imf.assets import shipped_model_path
    from imf.checkpoint import load_model
    from imf.codec.decoder import decode_file
    from imf.codec.encoder import DEFAULT_QUALITY, encode_frames
    from imf.codec.tables import has_tables, load_tables
    from imf.data.dataset import held_out_frames
    from imf.data.samples import sample_path
    from imf.data.video import VideoWriter, iter_frames, probe, to_tensor
    from imf.eval.lpips import LPIPS
    from imf.eval.heldout import held_out_scores
    from imf.pipeline import reconstruct_video

    t0 = time.perf_counter()
    ckpt = Path(args.ckpt) if args.ckpt else shipped_model_path()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"model: {ckpt}")
    model = load_model(ckpt)
    s = model.config.resolution
    clip = sample_path("WolfgangLanger_Pexels.mp4")
    info = probe(clip)
    print(f"sample clip: {clip} ({info.width}x{info.height}, {info.num_frames} frames, {info.fps:.2f} fps)")

    # 1. reconstruction of the whole clip, side by side: reference | original | reconstruction
    recon = reconstruct_video(model, clip, out / "reconstruction.mp4", compare=True, max_frames=args.max_frames)
    print(f"reconstruction: {recon.output} ({recon.frames} frames, {recon.frames_per_second:.1f} frames/s)")

    # 2. held-out frames (the last 20%, never seen in training): model against copying the reference
    held = held_out_frames(clip, s, 0.2)
    scores = held_out_scores(model, to_tensor(held.reference)[0], to_tensor(held.frames), lpips=LPIPS("alex"))
    print(f"held-out frames {held.indices[0]}..{held.indices[-1]} (reference = frame 0):")
    print(f"  IMF                 PSNR {scores['psnr']:6.2f} dB  L1 {scores['l1']:.4f}  LPIPS(alex) {scores['lpips']:.4f}")
    print(f"  copy the reference  PSNR {scores['copy_psnr']:6.2f} dB  L1 {scores['copy_l1']:.4f}  "
          f"LPIPS(alex) {scores['copy_lpips']:.4f}")

    # 3. the codec: encode to .imf and decode back to mp4
    result = {"reconstruction": str(recon.output), "held_out": scores}
    if has_tables(ckpt):
        tables = load_tables(ckpt)
        quality = args.quality if args.quality is not None else DEFAULT_QUALITY
        n = min(info.num_frames, args.max_frames or info.num_frames)
        stats = encode_frames(model, iter_frames(clip, size=s, stop=n), out / "clip.imf", fps=info.fps,
                              tables=tables, quality=quality, total=n)
        print("codec:", stats.summary())
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
