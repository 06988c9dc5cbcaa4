"""``imf call send`` and ``imf call receive``: a live video call with the IMF codec over TCP (docs/call.md).

Exit status: 0 when the call ran to its end; 1 when it broke off (the other side went away, the stream
broke, nothing came in time), with one line saying what happened; 2 for a user mistake, including a
receiver that refuses the stream (another model).
"""

from __future__ import annotations

import argparse
import sys

from imf.cli.common import (add_ckpt, add_device, add_json, add_precision, add_quiet, crf, default_device,
                            emit_json, int_in, number_in, positive_int, protect_inputs)
from imf.cli.codec import add_encoder_options


def _hostport(text: str) -> tuple[str, int]:
    from imf.call.protocol import parse_hostport

    try:
        host, port = parse_hostport(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if port == 0:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {text!r}")
    return host, port


def _listen(text: str) -> tuple[str, int]:
    from imf.call.protocol import parse_hostport

    try:
        return parse_hostport(text, default_host="")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("HOST:PORT", "PORT or HOST:PORT")) from None


def _preview(text: str) -> tuple[str, int]:
    from imf.call.protocol import parse_hostport

    try:
        return parse_hostport(text, default_host="127.0.0.1")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("HOST:PORT", "PORT or HOST:PORT")) from None


_seconds = number_in(0, 86400, low_open=True)


def register(sub: argparse._SubParsersAction) -> None:
    from imf.call.receiver import DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_TIMEOUT
    from imf.call.sender import DEFAULT_WINDOW

    c = sub.add_parser("call", help="a live video call over TCP: stream a video or camera, decode it as it comes",
                       description="A live call with the IMF codec: `send` streams a video file (at its own frame "
                                   "rate) or a camera as an .imf stream over TCP, `receive` decodes each frame as it "
                                   "arrives. Both print frames, rate, latency and coding times at the end.")
    csub = c.add_subparsers(dest="call_command", metavar="COMMAND")

    s = csub.add_parser("send", help="call a receiver and stream a video file or camera to it",
                        description="Stream SOURCE to the receiver at HOST:PORT: the reference keyframe, one "
                                    "entropy-coded token per frame, a new keyframe at each scene cut, encoded as "
                                    "frames come (no look-ahead). When the receiver falls behind (--window frames "
                                    "sent and not yet shown), token frames are dropped and counted; keyframes never.")
    s.add_argument("source", metavar="SOURCE", help="video file or frame folder (played at its frame rate, as if "
                                                   "live), or a v4l2 camera /dev/videoN")
    s.add_argument("--to", metavar="HOST:PORT", type=_hostport, required=True, help="the receiver's address")
    add_ckpt(s, "model folder with fitted codec tables (the receiver must have the same model)")
    add_encoder_options(s, min_psnr=False, framing_counted=True)
    s.add_argument("--window", type=int_in(1, 10000), default=DEFAULT_WINDOW, metavar="N",
                   help=f"frames in flight (sent, not yet shown by the receiver) before token frames are dropped "
                        f"(default {DEFAULT_WINDOW})")
    s.add_argument("--fast", action="store_true",
                   help="do not play the source at its frame rate: send as fast as the receiver takes frames, "
                        "waiting for the window instead of dropping (tests, benchmarks; same frames as encode)")
    s.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="send at most N frames")
    s.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="S",
                   help="keep trying to reach the receiver for S seconds (default 10)")
    s.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"give up when the receiver shows no frame for S seconds (default {DEFAULT_TIMEOUT:g})")
    add_json(s, "the sender's stats")
    add_quiet(s)
    add_device(s)
    protect_inputs(s, ("source",), ("json",))
    s.set_defaults(func=run_send)

    r = csub.add_parser("receive", help="wait for one call, decode it as it arrives, write the video",
                        description="Listen for one call and decode each frame as soon as its message is whole. "
                                    "Connections that are not a call for this model are refused (and the receiver "
                                    "goes on waiting). If the sender disconnects, what was decoded is kept.")
    r.add_argument("--listen", metavar="[HOST:]PORT", type=_listen, required=True,
                   help="port to listen on (all interfaces), or HOST:PORT (e.g. 127.0.0.1:5000); port 0: any free one")
    r.add_argument("-o", "--output", metavar="OUT.mp4", default=None,
                   help="video of what was shown (mp4, mov or mkv); a frame the sender dropped repeats the last one")
    r.add_argument("--record", metavar="FILE.imf", default=None,
                   help="also write the stream received as an .imf file (`imf decode` reads it)")
    r.add_argument("--show", action="store_true", help="show the call in a window as it is decoded (needs a display)")
    r.add_argument("--preview", metavar="[HOST:]PORT", type=_preview, default=None,
                   help="serve the call as it is decoded to a browser at http://HOST:PORT/ (Motion-JPEG; host "
                        "default 127.0.0.1, this machine only; port 0: any free one); no display needed")
    add_ckpt(r, "model folder with fitted codec tables (the sender's model)")
    r.add_argument("--crf", type=crf, default=18, help="x264 CRF of the output video, 0-51 (default 18)")
    r.add_argument("--wait", type=_seconds, default=None, metavar="S",
                   help="give up when no call came within S seconds (default: wait)")
    r.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"end the call when the sender is silent for S seconds (default {DEFAULT_TIMEOUT:g})")
    r.add_argument("--handshake-timeout", type=_seconds, default=DEFAULT_HANDSHAKE_TIMEOUT, metavar="S",
                   help=f"seconds a new connection has to introduce itself (default {DEFAULT_HANDSHAKE_TIMEOUT:g})")
    add_precision(r)  # frame synthesis only: the entropy-decoded symbols are the same in every precision
    add_json(r, "the receiver's stats (per frame: bytes, decode time, latency)")
    add_quiet(r)
    add_device(r)
    protect_inputs(r, (), ("output", "record", "json"))
    r.set_defaults(func=run_receive)

    def call_help(args: argparse.Namespace) -> int:
        c.print_help()
        return 2

    c.set_defaults(func=call_help)


def _report(args: argparse.Namespace, who: str, stats, extra: dict) -> int:
    """Print the summary (stderr when the JSON goes to stdout), write the JSON; 1 with one line if it broke off."""
    print(stats.summary(), file=sys.stderr if args.json == "-" else sys.stdout)
    emit_json(args.json, {**extra, **stats.to_dict()})
    if stats.error:
        sys.stdout.flush()
        print(f"imf call {who}: {stats.error}", file=sys.stderr)
        return 1
    return 0


def run_send(args: argparse.Namespace) -> int:
    from imf.call.protocol import CallFailed
    from imf.call.sender import send_call
    from imf.call.source import is_camera, open_source
    from imf.checkpoint import load_model
    from imf.codec.quantizer import DEFAULT_QUALITY
    from imf.codec.tables import load_tables

    tables = load_tables(args.ckpt)
    model = load_model(args.ckpt, map_location=default_device(args.device))
    source = open_source(args.source, model.config.resolution)  # InputError before any connection
    quality = DEFAULT_QUALITY if args.quality is None else args.quality
    if args.target_kbps is not None:
        quality = tables.quality_for_token_rate(args.target_kbps, source.fps, args.entropy)
        print(f"token quality {quality} for a target of {args.target_kbps} kbps of tokens")
    try:
        stats = send_call(
            model, source, args.to, tables=tables, quality=quality, entropy=args.entropy,
            keyframe_codec=args.keyframe_codec, keyframe_quality=args.keyframe_quality,
            scene_cut_threshold=args.scene_cut or None, max_keyframe_interval=args.max_keyframe_interval,
            window=args.window, realtime=not args.fast, max_frames=args.max_frames,
            connect_timeout=args.connect_timeout, timeout=args.timeout, progress=not args.quiet)
    except CallFailed as e:
        print(f"imf call send: {e}", file=sys.stderr)
        return 1
    return _report(args, "send", stats, {"camera": is_camera(args.source)})


def run_receive(args: argparse.Namespace) -> int:
    from imf.call.protocol import CallFailed
    from imf.call.receiver import CallReceiver
    from imf.checkpoint import load_model
    from imf.codec.tables import load_tables

    tables = load_tables(args.ckpt)
    from imf.devices import model_device
    from imf.pipeline import resolve_precision

    viewers = []  # opened before the model loads: a missing display is a one-line error before any work
    if args.show:
        from imf.call.viewer import WindowViewer

        viewers.append(WindowViewer())
    if args.preview:
        from imf.call.viewer import BrowserViewer

        viewers.append(BrowserViewer(*args.preview))
        print(f"imf call receive: watch the call at {viewers[-1].url}", file=sys.stderr, flush=True)

    def on_frame(index, frame):
        for viewer in viewers:
            viewer(index, frame)

    model = load_model(args.ckpt, map_location=default_device(args.device))
    precision = resolve_precision(args.precision, model_device(model))
    try:
        receiver = CallReceiver(
            model, tables=tables, listen=args.listen, output=args.output, record=args.record, crf=args.crf,
            handshake_timeout=args.handshake_timeout, timeout=args.timeout, progress=not args.quiet,
            precision=precision, on_frame=on_frame if viewers else None,
            log=lambda line: print(f"imf call receive: {line}", file=sys.stderr, flush=True))
    except BaseException:
        for viewer in viewers:
            viewer.close()
        raise
    host, port = receiver.address
    print(f"imf call receive: listening on {host}:{port}", file=sys.stderr, flush=True)
    try:
        stats = receiver.run(wait=args.wait)
    except CallFailed as e:
        print(f"imf call receive: {e}", file=sys.stderr)
        return 1
    finally:
        receiver.close()
        for viewer in viewers:
            viewer.close()
    written = [p for p in (args.output, args.record) if p and stats.frames_decoded]
    if written:
        print(f"wrote {' and '.join(written)}: {stats.frames_decoded} frames decoded"
              + (f", {stats.frames_written} in the video" if args.output else ""),
              file=sys.stderr if args.json == "-" else sys.stdout)
    if stats.error and stats.frames_decoded:
        where = f" in {args.output}" if args.output else ""
        stats.error += f"; kept the {stats.frames_decoded} frames decoded{where}"
    return _report(args, "receive", stats, {"output": args.output, "record": args.record, "precision": precision})
