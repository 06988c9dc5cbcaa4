"""``imf reconstruct`` and ``imf reenact``: inference on video files. Both only parse arguments and call
``imf.pipeline`` (which owns device, precision, batching, face crop and the video files)."""

from __future__ import annotations

import argparse

from imf.cli.common import (add_batch_size, add_ckpt, add_device, add_precision, add_quiet, frame_index,
                            number_in, positive_int, protect_inputs, setup_logging)


def _crf(text: str) -> int:
    value = frame_index(text)
    if value > 51:
        raise argparse.ArgumentTypeError(f"crf must be in 0..51, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser, compare_help: str) -> None:
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", metavar="OUT.mp4",
                     help="output video (H.264 .mp4, .mov or .mkv) at the (driving) video's frame rate, with its audio")
    out.add_argument("--out", dest="output", help=argparse.SUPPRESS)  # the name of imf 0.1, still read
    p.add_argument("--compare", action="store_true", help=compare_help)
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="use only the first N frames of the video")
    add_device(p)
    add_precision(p)
    add_batch_size(p, 8, "frames per model call; memory grows with it")
    p.add_argument("--crf", type=_crf, default=18, metavar="Q", help="x264 quality of the output, 0-51 (default 18)")
    add_quiet(p)


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "reconstruct", help="rebuild a video from one reference frame and one token per frame",
        description="Rebuild every frame of VIDEO (centre square crop at the model's resolution) from a "
                    "reference frame and the frame's own latent token; write an H.264 video at VIDEO's frame "
                    "rate, keeping its audio.")
    add_ckpt(r)
    r.add_argument("video", metavar="VIDEO", help="input video, frame folder or image")
    r.add_argument("--ref-frame", type=frame_index, default=0, metavar="K",
                   help="index of the reference frame (default 0, the first)")
    _add_common(r, "write a side-by-side video instead: reference | original | reconstruction (3S x S)")
    protect_inputs(r, ("video",), ("output",))
    r.set_defaults(func=run_reconstruct)

    e = sub.add_parser(
        "reenact", help="animate a source face with the motion of a driving video",
        description="Cross-identity reenactment: the tokens of the DRIVING frames decoded against the SOURCE "
                    "image's features (its appearance). Writes an H.264 video at the driving video's frame "
                    "rate, keeping its audio.")
    add_ckpt(e)
    e.add_argument("--source", required=True, metavar="IMAGE_OR_VIDEO",
                   help="the face to animate: an image, or a video whose first frame is used")
    e.add_argument("--driving", required=True, metavar="VIDEO", help="the video whose motion is transferred")
    e.add_argument("--relative", action="store_true",
                   help="transfer motion as a token offset, t_source + (t_driving,k - t_driving,0), which keeps "
                        "the source's identity and pose at the start (default: absolute driving tokens)")
    e.add_argument("--crop", action="store_true",
                   help="face-crop the source and the driving video first (one still box for the driving "
                        "video) and paste the result back into the full source image")
    e.add_argument("--paste", choices=("soft", "hard"), default="soft",
                   help="with --crop, how the result goes back into the source image: soft (default) blends it in "
                        "under a mask that is 1 in the middle and fades to 0 at the crop's border, so no square "
                        "seam shows; hard replaces the square as it is")
    e.add_argument("--feather", type=number_in(0, 0.5), default=None, metavar="F",
                   help="with --crop --paste soft, the width of the fade as a fraction of the crop side, 0-0.5 "
                        "(default 0.15)")
    _add_common(e, "write a side-by-side video instead: source | driving | result, the S x S crops the "
                   "model sees (3S x S)")
    protect_inputs(e, ("source", "driving"), ("output",))
    e.set_defaults(func=run_reenact)


def _report(stats) -> None:
    audio = ", with audio" if stats.audio else ""
    print(f"wrote {stats.output} ({stats.frames} frames, {stats.width}x{stats.height}, {stats.fps:g} fps{audio}) "
          f"in {stats.seconds:.1f} s: {stats.frames_per_second:.1f} frames/s on {stats.device} ({stats.precision})")


def run_reconstruct(args: argparse.Namespace) -> int:
    from imf.eval.domain import warn_if_out_of_domain
    from imf.pipeline import reconstruct_video

    setup_logging()
    stats = reconstruct_video(args.ckpt, args.video, args.output, ref_frame=args.ref_frame, compare=args.compare,
                              max_frames=args.max_frames, device=args.device, precision=args.precision,
                              batch_size=args.batch_size, crf=args.crf, progress=not args.quiet)
    _report(stats)
    warn_if_out_of_domain(stats.copy_check)
    return 0


def run_reenact(args: argparse.Namespace) -> int:
    from imf.data.crop import DEFAULT_FEATHER
    from imf.pipeline import reenact_video

    setup_logging()
    feather = DEFAULT_FEATHER if args.feather is None else args.feather
    stats = reenact_video(args.ckpt, args.source, args.driving, args.output, relative=args.relative, crop=args.crop,
                          compare=args.compare, max_frames=args.max_frames, device=args.device,
                          precision=args.precision, batch_size=args.batch_size, crf=args.crf,
                          paste=args.paste, feather=feather, progress=not args.quiet)
    _report(stats)
    return 0
