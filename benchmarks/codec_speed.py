"""Does the codec decode at model speed? Whole commands, alternating: ``imf decode`` of a clip's ``.imf`` file
against ``imf reconstruct`` of the same clip (the model alone, no entropy coding), each ``--repeats`` times.

    python benchmarks/codec_speed.py [--clip data/corpus64/heldout_people/carphone_pristine_000.mp4] \\
        [--ckpt DIR] [--repeats 3] [--out benchmarks/results/codec_speed.json]

The ``.imf`` file is made once with ``imf encode`` (not timed here). Each run is a fresh process, so both
include Python's and torch's start-up and the model load; the median wall time of each is kept, with the
decode's own frames/s as ``imf decode --json`` reports it. Goal: decode within ~15% of reconstruct.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMF = [sys.executable, "-m", "imf.cli"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(ROOT / "data" / "corpus64" / "heldout_people" / "carphone_pristine_000.mp4"))
    ap.add_argument("--ckpt", default=None, help="model folder with codec tables (default: the shipped model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "codec_speed.json"))
    args = ap.parse_args(argv)
    ckpt = ["--ckpt", args.ckpt] if args.ckpt else []
    with tempfile.TemporaryDirectory() as tmp:
        coded, stats = Path(tmp) / "clip.imf", Path(tmp) / "decode.json"
        subprocess.run([*IMF, "encode", args.clip, "-o", str(coded), "--quiet", *ckpt], check=True)
        times: dict[str, list[float]] = {"decode": [], "reconstruct": []}
        fps = []
        for _ in range(args.repeats):
            times["decode"].append(timed([*IMF, "decode", str(coded), "-o", str(Path(tmp) / "d.mp4"), "--quiet",
                                          "--json", str(stats), *ckpt]))
            fps.append(json.loads(stats.read_text())["decode_fps"])
            times["reconstruct"].append(timed([*IMF, "reconstruct", args.clip, "-o", str(Path(tmp) / "r.mp4"),
                                               "--quiet", *ckpt]))
        size = coded.stat().st_size
    from imf.bench.machine import machine_info
    import torch

    result = {"benchmark": "codec_speed", "protocol": __doc__, "clip": args.clip, "imf_bytes": size,
              "seconds": {k: statistics.median(v) for k, v in times.items()}, "all_seconds": times,
              "decode_fps_median": statistics.median(fps),
              "decode_over_reconstruct": statistics.median(times["decode"]) / statistics.median(times["reconstruct"]),
              "machine": machine_info(torch.device("cpu"))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"imf decode {result['seconds']['decode']:.2f} s ({result['decode_fps_median']:.0f} frames/s inside), "
          f"imf reconstruct {result['seconds']['reconstruct']:.2f} s: decode / reconstruct "
          f"{result['decode_over_reconstruct']:.2f}; wrote {out}")


if __name__ == "__main__":
    main()
