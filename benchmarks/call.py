"""A bounded loopback call per sample clip: rate with every byte counted, latency, coding times, drops.

Usage::

    python benchmarks/call.py [--ckpt DIR] [--clips carphone_pristine.mp4,cap13_edit2.mp4] [--seconds 15] \\
        [--out benchmarks/results/call.json]

For each clip, `imf call receive` and `imf call send` run as two processes on 127.0.0.1 (a free port), the
sender playing the clip at its own frame rate (real-time pacing, drops allowed), for at most ``--seconds``
of it. Defaults: the shipped model, carphone (a person held out of its training corpus) and cap13_edit2 (the
held-out webcam man), centre-cropped to the model's resolution as `imf encode` does, one torch thread per
process (``--threads``). The JSON keeps both sides' stats beside the machine and its load average, since the
latency depends on what else the CPU runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CLIPS = "carphone_pristine.mp4,cap13_edit2.mp4"
KEYS_SENT = ("frames_captured", "frames_sent", "keyframes", "dropped_late", "dropped_window", "max_in_flight",
             "bytes_sent", "kbps", "encode_ms", "keyframe_encode_ms", "ack_latency_ms", "seconds", "complete")
KEYS_RECEIVED = ("frames_decoded", "frames_dropped", "keyframes", "bytes_received", "handshake_bytes",
                 "framing_bytes", "keyframe_bytes", "token_bytes", "token_frame_bytes", "kbps", "kbps_with_tcpip",
                 "kbps_upstream", "kbps_series", "latency_ms", "decode_ms", "keyframe_decode_ms", "complete")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _imf(*args: str) -> list[str]:
    return [sys.executable, "-m", "imf", *args]


def call_once(clip: Path, ckpt: str | None, seconds: float, threads: int, work: Path) -> dict:
    from imf.data.video import probe

    info = probe(clip)
    frames = min(info.num_frames, max(1, round(seconds * info.fps)))
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    ckpt_args = ["--ckpt", ckpt] if ckpt else []
    rjson, sjson = work / f"{clip.stem}.receive.json", work / f"{clip.stem}.send.json"
    receiver = subprocess.Popen(_imf("call", "receive", "--listen", f"127.0.0.1:{port}", "-o",
                                     str(work / f"{clip.stem}.mp4"), "--json", str(rjson), "--quiet",
                                     "--wait", "120", *ckpt_args),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    sender = subprocess.run(_imf("call", "send", str(clip), "--to", f"127.0.0.1:{port}", "--max-frames", str(frames),
                                 "--json", str(sjson), "--quiet", *ckpt_args),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    try:
        receiver_err = receiver.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        receiver.kill()
        receiver_err = receiver.communicate()[1]
    wall = time.perf_counter() - start
    if sender.returncode != 0 or receiver.returncode != 0:
        sys.exit(f"{clip.name}: the call failed (sender {sender.returncode}, receiver {receiver.returncode})\n"
                 f"{sender.stderr[-2000:]}\n{receiver_err[-2000:]}")
    sent, got = json.loads(sjson.read_text()), json.loads(rjson.read_text())
    return {"clip": clip.name, "fps": info.fps, "source_size": [info.width, info.height], "frames": frames,
            "media_seconds": got["media_seconds"], "wall_seconds": wall, "load_average_before": list(load_before),
            "load_average_after": list(os.getloadavg()),
            "sender": {k: sent[k] for k in KEYS_SENT}, "receiver": {k: got[k] for k in KEYS_RECEIVED},
            "header": got["header"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default=None, help="model folder with codec tables (default: the shipped model)")
    p.add_argument("--clips", default=DEFAULT_CLIPS, help=f"sample clip names or paths (default {DEFAULT_CLIPS})")
    p.add_argument("--seconds", type=float, default=15.0, help="at most this much of each clip (default 15)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--out", default="benchmarks/results/call.json")
    args = p.parse_args(argv)

    from imf.assets import SHIPPED_MODEL
    from imf.data.samples import sample_path

    clips = [Path(c) if Path(c).exists() else sample_path(c) for c in args.clips.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for clip in clips:
            run = call_once(clip, args.ckpt, args.seconds, args.threads, Path(tmp))
            r, s = run["receiver"], run["sender"]
            print(f"{run['clip']}: {run['frames']} frames at {run['fps']:.2f} fps: {r['kbps']:.2f} kbps "
                  f"(~{r['kbps_with_tcpip']:.1f} with TCP/IP headers), latency median {r['latency_ms']['median']:.1f} "
                  f"ms p95 {r['latency_ms']['p95']:.1f} ms, decode median {r['decode_ms']['median']:.1f} ms, "
                  f"encode median {s['encode_ms']['median']:.1f} ms, {r['frames_dropped']} dropped")
            runs.append(run)
    result = {
        "what": "loopback `imf call` per clip on 127.0.0.1, real-time pacing; rates count every byte of the call "
                "protocol (handshake, framing, CRCs, keyframes, tokens); kbps_with_tcpip adds 52 bytes of "
                "IPv4 + TCP headers per message; latency = capture -> shown (one clock)",
        "model": args.ckpt or SHIPPED_MODEL, "threads_per_process": args.threads,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
