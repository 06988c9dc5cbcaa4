"""Rate–distortion study: our codec against standard codecs on the same frames (``imf rd``).

For each video:
1. Read the first ``max_frames`` frames as the model sees them (centre square crop, S×S): the single
   source every codec encodes from (kept in memory; written as lossless FFV1 RGB only for VMAF).
2. Our codec at several token qualities: ``encode_frames`` → ``.imf``, decoded as ``decode_file`` decodes it
   in fp32 (the encoder's closed-loop frames are those very frames), one keyframe at the start (scene-cut
   keyframes off, like the baselines' single keyframe). Its rate counts every bit of the file (header,
   reference keyframe(s), tokens): "total"; the tokens-only rate (the paper's count) is reported beside it.
3. Each standard codec at several CRF/QP points (``imf.eval.baselines``: low delay, one keyframe).
4. Quality of every decoded sequence against the source, on RGB, by the same ``FrameScorer`` (PSNR,
   MS-SSIM, LPIPS VGG/AlexNet, SSIM, L1) and VMAF where ``imf.eval.vmaf`` and ffmpeg's libvmaf exist.
5. BD-rate and BD-quality of ours (test) against each codec (anchor), per metric, with the cubic
   (VCEG-M33) and pchip fits. Rates used: whole .imf file for ours, payload (packets + parameter sets)
   for the standard codecs. LPIPS enters as 1 − LPIPS so that every quality grows with rate. Where the
   curves do not overlap the value is None and a note says so: nothing is extrapolated.

Speed (same numbers): the standard codecs are coded in threads beside our encoder, E_T runs once per clip
for all our qualities, our decoded frames are the encoder's closed-loop frames, and all points are scored
together batch by batch of the source (``_video_points``).

Outputs in ``out_dir``: ``rd.json`` (every point, BD values, notes, settings), ``rd_points.csv``,
``rd_report.md``, PNG plots (``plots.py``), and the coded streams under ``streams/``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from imf.errors import InputError
from imf.eval import baselines
from imf.eval.bdrate import bd_quality_result, bd_rate_result
from imf.eval.reconstruct_eval import FrameScorer, json_safe, score_many_sequences

log = logging.getLogger(__name__)

RD_METRICS = ("psnr", "ms_ssim", "ssim", "l1", "lpips_vgg", "lpips_alex")
# Metrics BD values are computed for, and how each becomes "higher is better".
BD_METRICS: dict[str, Callable[[float], float]] = {
    "psnr": lambda v: v,
    "ms_ssim": lambda v: v,
    "lpips_vgg": lambda v: 1.0 - v,
    "lpips_alex": lambda v: 1.0 - v,
    "vmaf": lambda v: v,
}
BD_METHODS = ("cubic", "pchip")
OURS = "imf"


@dataclass
class RDPoint:
    """One rate–quality point. rate_bits: the bits BD and plots use (ours: the whole file; standard
    codecs: the payload). rates: every rate variant (bpp_/kbps_ + total/tokens or payload/file).
    quality: mean per-frame metrics (and vmaf when measured)."""

    video: str
    codec: str
    label: str
    param: str
    value: int
    num_frames: int
    size: int
    fps: float
    rate_bits: int
    bpp: float
    kbps: float
    rates: dict[str, float]
    quality: dict[str, float]
    extra: dict = field(default_factory=dict)


@dataclass
class RDResult:
    checkpoint: str
    resolution: int
    videos: list[str]
    codecs: list[str]
    points: list[RDPoint]
    bd: list[dict]
    notes: list[str]
    settings: str
    metrics: list[str]

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    def curve(self, video: str, codec: str) -> list[RDPoint]:
        """Points of one codec on one video, sorted by rate."""
        return sorted((p for p in self.points if p.video == video and p.codec == codec), key=lambda p: p.rate_bits)


# ------------------------------------------------------------------------------------------ source
def write_lossless(frames: np.ndarray, fps: float, path: str | os.PathLike) -> Path:
    """Write uint8 RGB frames (N, H, W, 3) losslessly (FFV1, bgr0, Matroska) at a constant ``fps``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "bgr0"  # RGB stored exactly (no Y'CbCr conversion)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            vf.time_base = 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def load_clip(video: str | os.PathLike, size: int, max_frames: int | None) -> tuple[np.ndarray, float]:
    """(frames uint8 (N, S, S, 3), fps) of the first ``max_frames`` frames, cropped and resized as the model sees them."""
    from imf.data.video import iter_frames, probe

    info = probe(video)
    frames = list(iter_frames(video, size=size, stop=max_frames))
    if len(frames) < 2:
        raise InputError(f"{video}: an RD study needs at least 2 frames, got {len(frames)}")
    return np.stack(frames), info.fps


def _vmaf_fn():
    """``imf.eval.vmaf.vmaf`` if that module exists and ffmpeg has libvmaf, else None."""
    try:
        from imf.eval.vmaf import vmaf, vmaf_available
    except ImportError:
        return None
    return vmaf if vmaf_available() else None


# ------------------------------------------------------------------------------------------ one video
@dataclass
class _Coded:
    """One coded point before it is scored: its decoded frames and what its RDPoint needs."""

    codec: str
    label: str
    param: str
    value: int
    fps: float
    rate_bits: int
    rates: dict[str, float]
    extra: dict
    decoded: list[np.ndarray]


def _ours(model, tables, frames: np.ndarray, fps: float, q: int, path: Path, tokens=None) -> _Coded:
    """Our codec at one token quality; one keyframe at the start (scene-cut keyframes off), as the baselines.

    The decoded frames are the encoder's closed-loop reconstructions (``on_frame``): ``decode_file`` of the
    file gives these very frames in fp32 (``reconstruct_frames``, packet by packet: tests/test_codec_video.py),
    so the file is not decoded a second time. ``tokens``: E_T's tokens of ``frames`` (``frame_tokens``), the
    same at every quality, computed once per clip."""
    from imf.codec.encoder import encode_frames

    n, s = frames.shape[0], frames.shape[1]
    decoded: list[np.ndarray] = []
    stats = encode_frames(model, iter(frames), path, fps=fps, tables=tables, quality=int(q),
                          scene_cut_threshold=None, total=n, progress=False,
                          on_frame=lambda i, frame: decoded.append(frame), tokens=tokens)
    st = stats.to_dict()
    file_bytes = path.stat().st_size
    rates = {"bpp_total": st["bpp_total"], "kbps_total": st["kbps_total"], "bpp_tokens": st["bpp_tokens"],
             "kbps_tokens": st["kbps_tokens"], "bpp_file": 8.0 * file_bytes / (n * s * s),
             "kbps_file": 8.0 * file_bytes / (n / fps) / 1000.0}
    extra = {"stream": str(path), "num_keyframes": st["num_keyframes"], "keyframe_bits": st["keyframe_bits"],
             "token_bits": st["token_bits"], "header_bits": st["header_bits"], "keyframe_codec": st["keyframe_codec"],
             "keyframe_quality": st["keyframe_quality"], "entropy": st["entropy"],
             "encode_seconds": st["encode_seconds"]}
    return _Coded(OURS, "IMF (ours)", "quality", int(q), fps, 8 * st["total_bytes"], rates, extra, decoded)


def _baseline(codec: baselines.ResolvedCodec, v: int, frames: np.ndarray, fps: float, path: Path) -> _Coded:
    """One CRF/QP point of a standard codec, encoded (an ffmpeg subprocess) and decoded (PyAV): thread-safe."""
    enc = baselines.encode_baseline(frames, fps, codec, int(v), path)
    decoded = list(baselines.decode_frames(enc.path))
    rates = enc.rates()
    extra = {"stream": enc.path, "encoder": enc.encoder, "file_bytes": enc.file_bytes,
             "payload_bytes": enc.payload_bytes, "extradata_bytes": enc.extradata_bytes,
             "encode_seconds": enc.encode_seconds}
    return _Coded(codec.name, codec.label, codec.spec.param, int(v), enc.fps, 8 * enc.payload_bytes, rates, extra,
                  decoded)


def _vmaf_of(vmaf, source_path: Path, decoded: list[np.ndarray], fps: float, path: Path) -> float | None:
    dist = write_lossless(np.stack(decoded), fps, path)
    try:
        value = vmaf(str(source_path), str(dist))
    finally:
        dist.unlink(missing_ok=True)
    return None if value is None else float(value)


def _video_points(model, tables, video: str, frames: np.ndarray, fps: float, qualities, found, points_of,
                  streams: Path, work: Path, scorer: FrameScorer, vmaf, bar, workers: int) -> list[RDPoint]:
    """Every RD point of one video, in the order ours (by quality), then each codec (by its points).

    Same numbers as coding, decoding and scoring the points one after the other, in less time:
    - the standard codecs' encodes (ffmpeg subprocesses) and decodes run in ``workers`` threads, while this
      thread runs our encoder (and its closed loop) on the model; E_T's tokens, the same at every quality,
      are computed once;
    - our decoded frames are the encoder's own reconstructions (no second decode, see ``_ours``);
    - all points are scored together, batch by batch of the source: the source side of each metric (LPIPS
      features, SSIM moments) is computed once per batch for every point (``score_many_sequences``), while
      VMAF (ffmpeg subprocesses) runs in the threads.
    """
    from imf.codec.encoder import frame_tokens

    n = frames.shape[0]
    source = write_lossless(frames, fps, work / "source.mkv") if vmaf is not None else None
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="imf-rd") as pool:
        pending = [pool.submit(_baseline, codec, v, frames, fps, streams / f"{codec.name}_{codec.spec.param}{v}.mp4")
                   for codec in found for v in points_of[codec.name]]
        coded: list[_Coded] = []
        tokens = frame_tokens(model, frames)  # (n, d_m): E_T once, whatever the quality
        for q in qualities:
            coded.append(_ours(model, tables, frames, fps, q, streams / f"{OURS}_q{q}.imf", tokens))
            bar.update(1)
        for future in pending:  # in submission order: the points keep their order
            coded.append(future.result())
            bar.update(1)
        for c in coded:
            if len(c.decoded) != n:
                raise RuntimeError(f"{c.codec} {c.param} {c.value}: decoded {len(c.decoded)} frames for {n} "
                                   f"source frames")
        vmafs = ([pool.submit(_vmaf_of, vmaf, source, c.decoded, fps, work / f"decoded_{i}.mkv")
                  for i, c in enumerate(coded)] if source is not None else [])
        bar.set_postfix_str(f"{Path(video).stem}: scoring")
        scores = score_many_sequences(scorer, frames, [c.decoded for c in coded])
        for quality, future in zip(scores, vmafs):
            value = future.result()
            if value is not None:
                quality["vmaf"] = value
    s = frames.shape[1]
    rate_keys = {OURS: ("bpp_total", "kbps_total")}
    points = []
    for c, quality in zip(coded, scores):
        bpp_key, kbps_key = rate_keys.get(c.codec, ("bpp_payload", "kbps_payload"))
        points.append(RDPoint(video, c.codec, c.label, c.param, c.value, n, s, c.fps, c.rate_bits, c.rates[bpp_key],
                              c.rates[kbps_key], c.rates, quality, c.extra))
    return points


# ------------------------------------------------------------------------------------------ BD + notes
def bd_table(points: Sequence[RDPoint], video: str, codec: str, metrics: Sequence[str]) -> list[dict]:
    """BD-rate and BD-quality of ours (test) against ``codec`` (anchor) on one video, per metric and method."""
    ours = sorted((p for p in points if p.video == video and p.codec == OURS), key=lambda p: p.rate_bits)
    anchor = sorted((p for p in points if p.video == video and p.codec == codec), key=lambda p: p.rate_bits)
    rows = []
    for metric in metrics:
        if metric not in BD_METRICS or not all(metric in p.quality for p in ours + anchor):
            continue
        to_q = BD_METRICS[metric]
        ra, qa = [p.bpp for p in anchor], [to_q(p.quality[metric]) for p in anchor]
        rt, qt = [p.bpp for p in ours], [to_q(p.quality[metric]) for p in ours]
        for method in BD_METHODS:
            try:
                rate = bd_rate_result(ra, qa, rt, qt, method)
                qual = bd_quality_result(ra, qa, rt, qt, method)
            except ValueError as e:  # a curve that cannot be fitted (non-finite or non-positive values)
                rows.append({"video": video, "anchor": codec, "test": OURS, "metric": metric,
                             "quality_axis": "1 - " + metric if metric.startswith("lpips") else metric,
                             "method": method, "bd_rate_percent": None, "bd_rate_note": f"not computed: {e}",
                             "bd_quality": None, "bd_quality_note": f"not computed: {e}"})
                continue
            rows.append({"video": video, "anchor": codec, "test": OURS, "metric": metric,
                         "quality_axis": "1 - " + metric if metric.startswith("lpips") else metric,
                         "method": method, "bd_rate_percent": rate.value, "bd_rate_note": rate.note,
                         "bd_quality": qual.value, "bd_quality_note": qual.note})
    return rows


def bd_notes(rows: Sequence[dict]) -> list[str]:
    """One line per (video, anchor) whose pchip BD-rate is undefined, naming the metrics and the reason."""
    undefined: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["bd_rate_percent"] is None and r["method"] == "pchip":
            undefined.setdefault((r["video"], r["anchor"]), []).append(r)
    return [f"{Path(video).name} vs {anchor}: BD-rate undefined for {', '.join(r['metric'] for r in rs)}: "
            f"{rs[0]['bd_rate_note']}" for (video, anchor), rs in undefined.items()]


def reach_notes(points: Sequence[RDPoint], video: str, codecs: Sequence[str]) -> list[str]:
    """Say where a standard codec cannot reach our rates (its lowest rate is above ours)."""
    ours = [p.kbps for p in points if p.video == video and p.codec == OURS]
    notes = []
    if not ours:
        return notes
    lo, hi = min(ours), max(ours)
    for codec in codecs:
        curve = [p for p in points if p.video == video and p.codec == codec]
        if not curve:
            continue
        low = min(curve, key=lambda p: p.kbps)
        where = f"{Path(video).name}: {codec}'s lowest rate ({low.param} {low.value}) is {low.kbps:.3f} kbps"
        if low.kbps > hi:
            notes.append(f"{where}, above every rate of ours ({lo:.3f}..{hi:.3f} kbps): the curves share no rate "
                         f"range, so BD-quality is not defined and nothing is extrapolated")
        elif low.kbps > lo:
            notes.append(f"{where}: below it only our codec has points (ours go down to {lo:.3f} kbps)")
    return notes


# ------------------------------------------------------------------------------------------ driver
def run_rd(ckpt: str | os.PathLike, videos: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
           codecs: Sequence[str] = ("x264", "x265", "av1", "vvc"), qualities: Sequence[int] | None = None,
           crfs: dict[str, Sequence[int]] | None = None, max_frames: int | None = None, device: str = "cpu",
           metrics: Sequence[str] = RD_METRICS, with_vmaf: bool = True, plots: bool = True,
           progress: bool = True, workers: int | None = None) -> RDResult:
    """Run the RD study (see the module docstring) and write its outputs into ``out_dir``.

    qualities: our token quality levels (default: every level the checkpoint's codec tables hold).
    crfs: per codec name, its CRF/QP points (default: ``baselines.CODECS[name].default_points``).
    workers: threads for the standard codecs' encodes and VMAF (ffmpeg subprocesses) beside the model
    (default: one per core). A codec missing from the ffmpeg binary is reported in ``notes`` and skipped.
    """
    from imf.progress import progress_bar

    import imf
    from imf.codec.tables import load_tables

    if not videos:
        raise InputError("no video given")
    workers = workers if workers is not None else os.cpu_count() or 1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = imf.load_model(ckpt, map_location=device).eval()
    tables = load_tables(ckpt)
    size = model.config.resolution
    qualities = tuple(qualities or tables.qualities)
    missing = [q for q in qualities if q not in tables.levels]
    if missing:
        raise InputError(f"token qualities {missing} have no codec tables in {ckpt} (fitted: {list(tables.qualities)})")
    found, notes = baselines.resolve_codecs(codecs)
    for line in notes:
        log.warning(line)
    crfs = dict(crfs or {})
    for name, values in crfs.items():
        spec = baselines.CODECS.get(name)
        if spec is None:
            raise InputError(f"CRF/QP points given for unknown codec {name!r}")
        bad = [v for v in values if not spec.param_range[0] <= v <= spec.param_range[1]]
        if bad or not values:
            raise InputError(f"{name}: {spec.param.upper()} points must lie in {list(spec.param_range)}, got {list(values)}")
    points_of = {c.name: tuple(crfs.get(c.name, c.spec.default_points)) for c in found}
    scorer = FrameScorer(metrics, device=device)
    notes += list(scorer.skipped.values())
    vmaf = _vmaf_fn() if with_vmaf else None
    if with_vmaf and vmaf is None:
        notes.append("VMAF skipped: imf.eval.vmaf or ffmpeg's libvmaf filter is not available")
    total = len(videos) * (len(qualities) + sum(len(v) for v in points_of.values()))
    points: list[RDPoint] = []
    bd: list[dict] = []
    with progress_bar(total=total, desc="rd", unit="point", enabled=progress) as bar, \
            tempfile.TemporaryDirectory(prefix="imf-rd-") as tmp:
        for video in videos:
            video = str(video)
            stem = Path(video).stem
            bar.set_postfix_str(stem)
            frames, fps = load_clip(video, size, max_frames)
            work = Path(tmp) / stem
            streams = out / "streams" / stem
            streams.mkdir(parents=True, exist_ok=True)
            # The lossless source file is only needed by VMAF (ffmpeg reads both videos).
            start = time.perf_counter()
            points += _video_points(model, tables, video, frames, fps, qualities, found, points_of, streams, work,
                                    scorer, vmaf, bar, workers)
            log.info("%s: RD points in %.1f s", stem, time.perf_counter() - start)
            for codec in found:
                bd += bd_table(points, video, codec.name, list(BD_METRICS))
            notes += reach_notes(points, video, [c.name for c in found])
    notes += bd_notes(bd)
    result = RDResult(checkpoint=str(ckpt), resolution=size, videos=[str(v) for v in videos],
                      codecs=[OURS] + [c.name for c in found], points=points, bd=bd, notes=notes,
                      settings=baselines.settings_note(), metrics=sorted({k for p in points for k in p.quality}))
    write_outputs(result, out, plots=plots)
    return result


CSV_FIELDS = ("video", "codec", "label", "param", "value", "num_frames", "size", "fps", "rate_bits", "bpp", "kbps")


def write_outputs(result: RDResult, out: Path, plots: bool = True) -> list[Path]:
    """rd.json, rd_points.csv, rd_report.md and (optionally) the PNG plots; returns the paths written."""
    from imf.eval import report

    paths = [out / "rd.json", out / "rd_points.csv", out / "rd_report.md"]
    paths[0].write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    rate_keys = sorted({k for p in result.points for k in p.rates})
    with open(paths[1], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*CSV_FIELDS, *rate_keys, *result.metrics])
        for p in result.points:
            row = asdict(p)
            writer.writerow([row[k] for k in CSV_FIELDS] + [p.rates.get(k, "") for k in rate_keys]
                            + [p.quality.get(m, "") for m in result.metrics])
    paths[2].write_text(report.rd_markdown(result))
    if plots:
        from imf.eval.plots import plot_rd

        paths += plot_rd(result, out)
    return paths
