"""``imf eval`` (self-reconstruction metrics, the paper's Table 1) and ``imf rd`` (rate–distortion
against standard codecs). Both only parse arguments and call ``imf.eval``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imf.cli.common import (add_batch_size, add_ckpt, add_device, add_json, add_precision, add_quiet, default_device,
                            emit_json, positive_int, protect_inputs, setup_logging)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _codec_list(text: str) -> str:
    from imf.eval.baselines import CODECS

    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in CODECS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown codec(s) {', '.join(unknown) or repr(text)}; "
                                         f"choose among {', '.join(CODECS)}")
    return text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="self-reconstruction metrics (L1, PSNR, SSIM, MS-SSIM, LPIPS, FID) of a checkpoint",
        description="Reconstruct every frame of each video from one reference frame and the frame's token; "
                    "report per-video and mean L1, PSNR, SSIM, MS-SSIM, LPIPS (VGG and AlexNet) and FID, beside "
                    "the copy-the-reference baseline, as JSON and a Markdown table shaped like the paper's Table 1.")
    add_ckpt(p)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="videos (or frame folders) to evaluate")
    add_json(p, "the full report")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown tables here (printed to stdout otherwise)")
    p.add_argument("--compare", metavar="DIR",
                   help="write side-by-side videos (reference | original | reconstruction) into this folder")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="use only the first N frames of each video")
    p.add_argument("--ref-frame", type=int, default=0, metavar="K",
                   help="index of the reference frame within the frames used (default: 0, the first)")
    add_batch_size(p)
    p.add_argument("--no-fid", action="store_true", help="skip FID (it needs the Inception weights and is slow on CPU)")
    add_device(p)
    add_precision(p, "fp32")  # the model's precision; the metrics always run in fp32
    add_quiet(p)
    protect_inputs(p, ("videos",), ("json", "markdown"))
    p.set_defaults(func=run_eval)

    r = sub.add_parser(
        "rd", help="rate–distortion of our codec against x264, x265, AV1 and VVC: JSON, CSV, Markdown and plots",
        description="Encode each video with our codec at several token qualities and with standard codecs "
                    "(ffmpeg of imageio-ffmpeg; low delay, one keyframe) at several CRF/QP points, on the same "
                    "S×S frames; measure PSNR, MS-SSIM, LPIPS (and VMAF where available) on RGB; write every "
                    "point (rd.json, rd_points.csv), BD-rate / BD-quality of ours against each codec, a "
                    "Markdown report and PNG plots into --out.")
    add_ckpt(r, "model folder with its codec tables")
    r.add_argument("videos", nargs="+", metavar="VIDEO", help="videos (or frame folders) to code")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder")
    r.add_argument("--codecs", type=_codec_list, default="x264,x265,av1,vvc", metavar="LIST",
                   help="comma-separated standard codecs among x264, x265, av1, vvc (default: all); a codec the "
                        "ffmpeg binary lacks is reported and skipped")
    r.add_argument("--qualities", type=_int_list, metavar="Q,Q,...",
                   help="our token quality levels (default: every level in the checkpoint's codec tables)")
    for name in ("x264", "x265", "av1", "vvc"):
        from imf.eval.baselines import CODECS

        spec = CODECS[name]
        r.add_argument(f"--{name}-points", type=_int_list, metavar=f"{spec.param.upper()},...",
                       help=f"{spec.param.upper()} points of {name} (default: "
                            f"{','.join(map(str, spec.default_points))})")
    r.add_argument("--max-frames", type=positive_int, metavar="N", help="use only the first N frames of each video")
    r.add_argument("--no-vmaf", action="store_true", help="skip VMAF")
    r.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    add_device(r)
    add_quiet(r)
    r.set_defaults(func=run_rd)


def run_eval(args: argparse.Namespace) -> int:
    import imf
    from imf.eval.domain import warn_if_out_of_domain
    from imf.eval.reconstruct_eval import evaluate_reconstruction
    from imf.eval.report import eval_markdown

    setup_logging()
    device = default_device(args.device)
    model = imf.load_model(args.ckpt, map_location=device)
    report = evaluate_reconstruction(model, args.videos, ref_frame=args.ref_frame, max_frames=args.max_frames,
                                     batch_size=args.batch_size, compare_dir=args.compare, with_fid=not args.no_fid,
                                     checkpoint=str(args.ckpt), progress=not args.quiet, precision=args.precision)
    markdown = eval_markdown(report)
    emit_json(args.json, report.to_dict())
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown)
    if (not args.markdown or not args.json) and args.json != "-":  # the table, unless both go to files
        print(markdown)
    warn_if_out_of_domain(report.copy_checks())
    return 0


def run_rd(args: argparse.Namespace) -> int:
    from imf.eval.rd import run_rd as rd

    setup_logging()
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    points = {name: getattr(args, f"{name}_points") for name in ("x264", "x265", "av1", "vvc")
              if getattr(args, f"{name}_points")}
    result = rd(args.ckpt, args.videos, args.out, codecs=codecs, qualities=args.qualities, crfs=points,
                max_frames=args.max_frames, device=default_device(args.device), with_vmaf=not args.no_vmaf,
                plots=not args.no_plots, progress=not args.quiet)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(result.points)} RD points of {', '.join(result.codecs)} written to {args.out} "
          f"(rd.json, rd_points.csv, rd_report.md{'' if args.no_plots else ', PNG plots'})")
    return 0
