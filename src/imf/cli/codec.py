"""``imf encode``, ``imf decode`` and ``imf codec fit|info|finetune``: the IMF video codec on the command line
(``finetune`` lives in :mod:`imf.cli.codec_finetune`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imf.cli.common import (add_batch_size, add_ckpt, add_device, add_json, add_precision, add_quiet, crf,
                            default_device, emit_json, int_in, number_in, positive_int, protect_inputs,
                            quality_level)


def _quality_list(text: str) -> list[int]:
    try:
        return sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _fraction(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP fractions such as 0:0.8, got {text!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise argparse.ArgumentTypeError(f"need 0 <= START < STOP <= 1, got {text!r}")
    return lo, hi



def add_encoder_options(p: argparse.ArgumentParser, *, min_psnr: bool, framing_counted: bool = False) -> None:
    """The encoder's rate, entropy, keyframe and scene-cut options, shared by ``imf encode`` and ``imf call send``.
    min_psnr: offer --min-psnr (it needs the encoder's own reconstruction, which a live sender does not make)."""
    from imf.codec.keyframe import DEFAULT_KEYFRAME_CODEC, DEFAULT_KEYFRAME_QUALITY, KEYFRAME_CODECS
    from imf.codec.quantizer import DEFAULT_QUALITY
    from imf.codec.scenecut import DEFAULT_SCENE_CUT_THRESHOLD

    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=quality_level, default=None,
                      help=f"token quality level (one of the fitted levels; default {DEFAULT_QUALITY}; higher is finer)")
    rate.add_argument("--target-kbps", type=number_in(0, 1e6, low_open=True), default=None, metavar="R",
                      help="pick the highest quality whose token stream fitted within R kbps on the fitting data "
                           f"(keyframes{' and framing' if framing_counted else ''} not counted)")
    p.add_argument("--entropy", choices=("temporal", "static"), default="temporal",
                   help="entropy model: residual to the previous token (temporal, default) or per-frame (static)")
    p.add_argument("--keyframe-codec", choices=KEYFRAME_CODECS, default=DEFAULT_KEYFRAME_CODEC,
                   help=f"still-image codec of keyframes (default {DEFAULT_KEYFRAME_CODEC})")
    p.add_argument("--keyframe-quality", type=int_in(0, 100), default=DEFAULT_KEYFRAME_QUALITY,
                   help=f"keyframe codec quality 0..100 (default {DEFAULT_KEYFRAME_QUALITY})")
    p.add_argument("--max-keyframe-interval", type=positive_int, default=None, metavar="N",
                   help="send a keyframe at least every N frames (default: only at cuts)")
    if min_psnr:
        p.add_argument("--min-psnr", type=number_in(0, 100, low_open=True), default=None, metavar="DB",
                       help="send a keyframe when the reconstruction falls below DB dB PSNR (default: off)")
    p.add_argument("--scene-cut", type=number_in(0, 1), default=DEFAULT_SCENE_CUT_THRESHOLD, metavar="T",
                   help=f"colour-histogram distance in (0, 1] that counts as a scene cut "
                        f"(default {DEFAULT_SCENE_CUT_THRESHOLD}; 0 disables)")

def register(sub: argparse._SubParsersAction) -> None:
    from imf.codec.quantizer import DEFAULT_QUALITIES

    e = sub.add_parser("encode", help="encode a video into an .imf file",
                       description="Encode a video with an IMF checkpoint: keyframes intra-coded, every other "
                                   "frame one entropy-coded latent token. Prints the bit accounting.")
    e.add_argument("video", metavar="VIDEO", help="input video file (or folder of frames); centre-cropped and "
                                                  "resized to the model's resolution")
    add_ckpt(e, "model folder with fitted codec tables")
    e.add_argument("-o", "--output", metavar="FILE.imf", required=True, help="output .imf file")
    add_encoder_options(e, min_psnr=True)
    e.add_argument("--packet-frames", type=int_in(1, 255), default=8, metavar="N", help="frames per token packet (default 8)")
    add_json(e, "the bit accounting")
    add_quiet(e)
    add_device(e)
    protect_inputs(e, ("video",), ("output", "json"))
    e.set_defaults(func=run_encode)

    d = sub.add_parser("decode", help="decode an .imf file into a video",
                       description="Decode an .imf file to an H.264 video, frame by frame. Nothing is left at "
                                   "the output path if decoding fails.")
    d.add_argument("input", metavar="FILE.imf", help="the .imf file")
    d.add_argument("-o", "--output", metavar="OUT.mp4", required=True, help="output video (mp4, mov or mkv)")
    d.add_argument("--ckpt", metavar="DIR", default=None,
                   help="checkpoint folder of the model the file was made with (default: the folder recorded "
                        "for its model hash when it was encoded or fitted on this machine, else the shipped "
                        "model if the file was made with it, on any machine)")
    d.add_argument("--crf", type=crf, default=18, help="x264 CRF of the output video, 0-51 (default 18)")
    add_json(d, "decode statistics (frames, seconds, fps)")
    add_quiet(d)
    add_device(d)
    add_precision(d)  # frame synthesis only: the entropy-decoded symbols are the same in every precision
    protect_inputs(d, ("input",), ("output", "json"))
    d.set_defaults(func=run_decode)

    c = sub.add_parser("codec", help="codec tables: fit them, inspect .imf files, rate-aware fine-tuning",
                       description="Fit the codec's entropy tables for a checkpoint, print an .imf header, or "
                                   "fine-tune the token encoder for a rate trade-off.")
    csub = c.add_subparsers(dest="codec_command", metavar="COMMAND")
    f = csub.add_parser("fit", help="fit token statistics and entropy tables and store them in the checkpoint",
                        description="Compute the tokens of training videos, measure each dimension's spread and "
                                    "fit static and temporal integer entropy tables for each quality level; "
                                    "writes codec.json and codec.safetensors into the checkpoint folder.")
    f.add_argument("--ckpt", metavar="DIR", required=True, help="checkpoint folder (tables are written into it)")
    f.add_argument("--data", metavar="PATH", nargs="+", required=True,
                   help="training videos, frame folders, or folders of videos")
    f.add_argument("--qualities", type=_quality_list, default=list(DEFAULT_QUALITIES),
                   help="comma-separated quality levels to fit (default 1..10)")
    f.add_argument("--max-frames", type=int, default=None, metavar="N", help="at most N frames per video")
    f.add_argument("--fraction", type=_fraction, default=(0.0, 1.0), metavar="START:STOP",
                   help="part of each video to use, e.g. 0:0.8 keeps the last 20%% held out (default 0:1)")
    add_batch_size(f, 16)
    add_quiet(f)
    add_device(f)
    f.set_defaults(func=run_fit)
    i = csub.add_parser("info", help="print the header of an .imf file",
                        description="Validate and print the header of an .imf file.")
    i.add_argument("input", metavar="FILE.imf", help="the .imf file")
    add_json(i, "the header")
    i.set_defaults(func=run_info)
    from imf.cli.codec_finetune import add_parser as add_finetune_parser

    add_finetune_parser(csub)

    def codec_help(args: argparse.Namespace) -> int:
        c.print_help()
        return 2

    c.set_defaults(func=codec_help)


def run_encode(args: argparse.Namespace) -> int:
    from imf.checkpoint import load_model
    from imf.codec.decoder import read_header
    from imf.codec.encoder import encode_video
    from imf.codec.registry import remember_checkpoint
    from imf.codec.tables import load_tables
    from imf.data.video import probe
    from imf.codec.quantizer import DEFAULT_QUALITY
    from imf.eval.domain import warn_if_out_of_domain

    tables = load_tables(args.ckpt)
    quality = DEFAULT_QUALITY if args.quality is None else args.quality
    if args.target_kbps is not None:
        quality = tables.quality_for_token_rate(args.target_kbps, probe(args.video).fps, args.entropy)
        print(f"token quality {quality} for a target of {args.target_kbps} kbps of tokens")
    model = load_model(args.ckpt, map_location=default_device(args.device))
    stats = encode_video(
        model, args.video, args.output, tables=tables, quality=quality, entropy=args.entropy,
        keyframe_codec=args.keyframe_codec, keyframe_quality=args.keyframe_quality,
        max_keyframe_interval=args.max_keyframe_interval, min_quality_psnr=args.min_psnr,
        scene_cut_threshold=args.scene_cut or None, packet_frames=args.packet_frames, progress=not args.quiet)
    remember_checkpoint(read_header(args.output).model_hash, args.ckpt)
    print(f"wrote {args.output}")
    print(stats.summary())
    warn_if_out_of_domain(stats.copy_check)
    emit_json(args.json, {"input": str(args.video), "output": str(args.output), **stats.to_dict()})
    return 0


def _shipped_if_it_made(model_hash: str) -> Path | None:
    """The shipped model's folder if its hash is ``model_hash`` (its tables name it: no weights are loaded)."""
    from imf.assets import shipped_model_path
    from imf.codec.tables import load_tables
    from imf.errors import CheckpointError

    try:
        shipped = shipped_model_path()
        return shipped if load_tables(shipped).model_hash == model_hash else None
    except CheckpointError:
        return None


def _resolve_checkpoint(args: argparse.Namespace, header) -> Path:
    from imf.codec.registry import find_checkpoint
    from imf.errors import CheckpointError

    if args.ckpt:
        return Path(args.ckpt)
    found = find_checkpoint(header.model_hash)
    if found is None:
        found = _shipped_if_it_made(header.model_hash)
    if found is None:
        raise CheckpointError(f"{args.input} was encoded with model {header.model_hash[:16]}, which is not known "
                              f"on this machine; pass --ckpt DIR")
    return found


def run_decode(args: argparse.Namespace) -> int:
    from imf.progress import progress_bar

    from imf.checkpoint import load_model, model_hash
    from imf.codec.decoder import check_model, decode_file, read_header
    from imf.codec.tables import load_tables
    from imf.data.video import VideoWriter
    from imf.devices import model_device
    from imf.pipeline import resolve_precision

    header = read_header(args.input)  # validate before loading anything or creating the output
    ckpt = _resolve_checkpoint(args, header)
    model = load_model(ckpt, map_location=default_device(args.device))
    precision = resolve_precision(args.precision, model_device(model))
    identity = model_hash(model)
    check_model(header, model, str(args.input), identity)
    tables = load_tables(ckpt)
    start = time.perf_counter()
    count = 0
    # VideoWriter writes under a temporary name and renames on success; on an error it deletes it.
    with VideoWriter(args.output, header.fps, header.width, header.height, crf=args.crf) as writer, \
            progress_bar(total=header.frame_count, unit="frame", desc="decode", enabled=not args.quiet) as bar:
        for frame in decode_file(args.input, model, tables=tables, model_hash=identity, precision=precision):
            writer.write(frame)
            count += 1
            bar.update(1)
    seconds = time.perf_counter() - start
    fps = count / seconds if seconds > 0 else 0.0
    print(f"wrote {args.output}: {count} frames {header.width}x{header.height}, decoded at {fps:.1f} frames/s "
          f"({precision})")
    if args.json:
        emit_json(args.json, {"input": str(args.input), "output": str(args.output), "num_frames": count,
                                "decode_seconds": seconds, "decode_fps": fps, "precision": precision,
                                "header": header.to_dict()})
    return 0


def _expand_sources(paths: list[str]) -> list[Path]:
    """Clips of --data, found as training finds them (videos, frame folders, folders of clips, .txt lists)."""
    from imf.data.dataset import find_clips
    from imf.errors import InputError

    clips = find_clips(paths)
    if not clips:
        raise InputError(f"no video or frame folder found in {', '.join(paths)}")
    return [c.path for c in clips]


def run_fit(args: argparse.Namespace) -> int:
    from imf.checkpoint import load_model
    from imf.codec.fit import fit_codec
    from imf.codec.registry import remember_checkpoint

    model = load_model(args.ckpt, map_location=default_device(args.device))
    sources = _expand_sources(args.data)
    tables = fit_codec(model, sources, qualities=args.qualities, max_frames=args.max_frames,
                       fraction=args.fraction, batch_size=args.batch_size, progress=not args.quiet)
    tables.save(args.ckpt)
    remember_checkpoint(tables.model_hash, args.ckpt)
    print(f"fitted codec tables on {tables.info['num_frames']} frames of {len(sources)} source(s) for qualities "
          f"{list(tables.qualities)}; wrote {args.ckpt}/codec.json and codec.safetensors (id {tables.identity()[:16]})")
    for q in tables.qualities:
        lv = tables.levels[q]
        print(f"  quality {q}: static symbols {lv.static.min_symbol}..{lv.static.max_symbol}, "
              f"temporal residuals {lv.temporal.min_symbol}..{lv.temporal.max_symbol}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from imf.codec.decoder import read_header

    header = read_header(args.input)
    data = header.to_dict()
    if not emit_json(args.json, data):
        for k, v in data.items():
            print(f"{k:15s} {v}")
    return 0
