"""``imf serve``: the web app (``imf.serve``) on localhost. Only parses arguments, loads the models and
starts the server; everything the page does lives in ``imf.serve``."""

from __future__ import annotations

import argparse

from imf.cli.common import add_ckpt, add_device, add_quiet, int_in, number_in, positive_int

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    from imf.serve.limits import Limits

    d = Limits()
    p = sub.add_parser(
        "serve", help="a web app in the browser: reenact, reconstruct, code and edit faces",
        description="Serve a web page (Gradio) with four tabs: Reenact (a source face moved by a driving video, "
                    "with its audio), Reconstruct (a video rebuilt from its first frame, scored), Codec (an .imf "
                    "file to download beside x265 at the same bitrate) and Edit (head pose and expression "
                    "sliders). Binds to localhost only unless --host says otherwise; nothing is sent anywhere "
                    "(no analytics, no share link). Ctrl+C stops it and removes its temporary files.")
    add_ckpt(p)
    p.add_argument("--editor", metavar="DIR", default=None,
                   help="token editor folder for the Edit tab (default: the shipped editor, with the shipped model)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int_in(1, 65535), default=7860, help="port (default 7860)")
    p.add_argument("--max-upload-mb", type=number_in(0, 1e5, low_open=True), default=d.max_upload_mb, metavar="MB",
                   help=f"largest upload taken (default {d.max_upload_mb:g})")
    p.add_argument("--max-seconds", type=number_in(0, 1e5, low_open=True), default=d.max_seconds, metavar="S",
                   help=f"longest video taken, in seconds (default {d.max_seconds:g})")
    p.add_argument("--max-frames", type=positive_int, default=d.max_frames, metavar="N",
                   help=f"most frames a video may have (default {d.max_frames})")
    add_device(p)
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import sys

    from imf.cli.common import setup_logging
    from imf.errors import InputError
    from imf.serve.resources import Resources
    from imf.serve.session import Workspace
    from imf.serve.limits import Limits

    setup_logging()
    limits = Limits(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds, max_frames=args.max_frames)
    res = Resources.load(args.ckpt, args.editor, device=args.device)  # a bad --ckpt / --editor fails here, exit 2
    workspace = Workspace()
    # Gradio keeps its copies of uploads and results in GRADIO_TEMP_DIR (read when it is imported): put them
    # beside ours so that stopping the server removes both
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.root / "gradio"))

    def stop(signum, frame):  # SIGTERM stops the server as Ctrl+C does, through the cleanup below
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        from imf.serve.app import build_app, launch

        app = build_app(res, limits, workspace)
        if args.host not in LOCAL_HOSTS:
            print(f"imf serve: warning: listening on {args.host}: anyone who can reach this machine can use the app",
                  file=sys.stderr)
        print(f"imf serve: http://{'localhost' if args.host in LOCAL_HOSTS else args.host}:{args.port} "
              f"(model {res.ckpt}; temporary files in {workspace.root}, removed on exit; Ctrl+C stops it)", flush=True)
        try:
            launch(app, args.host, args.port, limits, quiet=args.quiet)
        except OSError as e:  # the port is taken, or the address is not this machine's
            raise InputError(f"cannot serve on {args.host}:{args.port}: {e}") from None
    except KeyboardInterrupt:
        pass
    finally:
        workspace.close()
    return 0
