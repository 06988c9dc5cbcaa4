"""The Codec tab: a video coded into an ``.imf`` file at a token quality, decoded again, and set beside x265
at the same rate.

- The rate: a token quality, or a target bitrate of the token stream in kbps, turned into the highest quality
  whose tokens fitted within it on the fitting data at the video's frame rate
  (``CodecTables.quality_for_token_rate``, as ``imf encode --target-kbps``; keyframes not counted).

- Ours: ``imf.codec.encode_frames`` on the frames the model sees (centre square crop, S×S), with the
  options of ``imf encode`` (scene-cut keyframes on), then ``decode_file``: the frames shown and scored are
  the decoder's. Its rate counts every bit of the file (header, keyframe(s), tokens, record framing).
- x265 (``imf.eval.baselines``, low delay, one keyframe, as in ``imf rd``): the finest CRF whose payload
  (packets + parameter sets, no container) fits in the ``.imf`` file's size (``encode_at_rate``). When even
  CRF 51 is larger, that point is shown and the page says so.
- Both are scored on the decoded RGB frames against the same S×S frames: PSNR and LPIPS (AlexNet). The
  videos on the page are those frames re-encoded as near-lossless H.264 for the browser (x265's own stream
  is HEVC, which browsers do not all play).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imf.codec.decoder import decode_file
from imf.codec.encoder import encode_frames
from imf.codec.stats import EncodeStats
from imf.data.video import VideoWriter, iter_frames
from imf.errors import CheckpointError, InputError
from imf.eval import baselines
from imf.eval.reconstruct_eval import score_sequences
from imf.pipeline import check_frame_size
from imf.serve.resources import Resources
from imf.serve.steps import FrameCounter, Progress, no_progress
from imf.serve.limits import Limits
from imf.serve.uploads import check_video, display_name, renamed

DISPLAY_CRF = 4  # the browser copies: near-lossless H.264 of the decoded frames
BASELINE = "x265"
RATE_MODES = ("quality", "target kbps")  # the tab's choice: a token quality, or a target token bitrate
ENTROPY = "temporal"  # encode_frames' default entropy model, whose measured rates a target is matched with


@dataclass(frozen=True)
class CodecResult:
    """imf_file: the coded file (its size is ``file_bytes``); decoded_video / baseline_video: the decoded
    frames of both codecs, for the browser. stats: our bit accounting. baseline: x265's encoding at the
    matched rate, or None with ``baseline_note`` saying why. quality: {"imf": metrics, "x265": metrics}."""

    imf_file: Path
    file_bytes: int
    stats: EncodeStats
    decoded_video: Path
    baseline: baselines.BaselineEncoding | None
    baseline_video: Path | None
    quality: dict[str, dict[str, float]]
    notes: list[str] = field(default_factory=list)
    target_kbps: float | None = None  # the target token rate the quality was picked for, if one was given

    @property
    def kbps(self) -> float:
        """Our rate, every bit of the file counted."""
        return 8.0 * self.file_bytes / self.stats.duration / 1000.0 if self.stats.duration > 0 else 0.0


def _write_display(frames, fps: float, path: Path) -> Path:
    size = frames[0].shape[0]
    with VideoWriter(path, fps, size, size, crf=DISPLAY_CRF) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def quality_range(res: Resources) -> tuple[int, int, int]:
    """(lowest, highest, default) token quality the model's tables were fitted for."""
    from imf.codec.quantizer import DEFAULT_QUALITY

    if res.tables is None:
        return DEFAULT_QUALITY, DEFAULT_QUALITY, DEFAULT_QUALITY
    levels = sorted(res.tables.qualities)
    default = DEFAULT_QUALITY if DEFAULT_QUALITY in levels else levels[len(levels) // 2]
    return levels[0], levels[-1], default


def token_kbps(res: Resources, quality: int, fps: float) -> float:
    """The token rate (kbps) of ``quality`` at ``fps`` measured on the fitting data (0 when not measured)."""
    measured = res.tables.info.get("bits_per_frame", {}) if res.tables is not None else {}
    return measured[str(quality)][ENTROPY] * fps / 1000.0 if str(quality) in measured else 0.0


def default_target_kbps(res: Resources, fps: float = 25.0) -> float:
    """The target box's first value: the default quality's measured token rate at ``fps``, rounded up to
    0.01 kbps (so at that frame rate it picks the default quality); 1 kbps without measured rates."""
    rate = token_kbps(res, quality_range(res)[2], fps)
    return math.ceil(rate * 100 - 1e-9) / 100 if rate > 0 else 1.0


def check_target_kbps(target_kbps) -> float:
    """A target bitrate from the page as a positive finite float; InputError otherwise."""
    if target_kbps is None or target_kbps == "":
        raise InputError("no target bitrate given: type one in kbps, or choose \u201cquality\u201d")
    try:
        value = float(target_kbps)
    except (TypeError, ValueError):
        raise InputError(f"the target bitrate must be a number of kbps, got {target_kbps!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"the target bitrate must be a positive number of kbps, got {target_kbps!r}")
    return value


def encode(res: Resources, video: str | os.PathLike | None, work: Path, limits: Limits = Limits(),
           quality: int | None = None, baseline: bool = True, progress: Progress = no_progress,
           target_kbps: float | None = None) -> CodecResult:
    """Code ``video`` at token ``quality`` (default: the tables' default), or, given ``target_kbps``, at the
    highest quality whose token stream fitted within that many kbps at the video's frame rate."""
    if res.tables is None:
        raise CheckpointError(res.tables_problem or "the model has no codec tables")
    if quality is not None and target_kbps is not None:
        raise ValueError("give a quality or a target bitrate, not both")
    quality = quality_range(res)[2] if quality is None else int(quality)
    if target_kbps is not None:
        target_kbps = check_target_kbps(target_kbps)
    info = check_video(video, limits, "video")
    notes: list[str] = []
    if target_kbps is not None:
        quality = res.tables.quality_for_token_rate(target_kbps, info.fps, ENTROPY)
        if token_kbps(res, quality, info.fps) > target_kbps:
            notes.append(f"no fitted quality keeps the tokens within {target_kbps:g} kbps at {info.fps:g} fps: "
                         f"the lowest, {quality}, is used")
    uploads = {video: "video"}
    s = res.resolution
    with renamed(uploads):
        check_frame_size(info.width, info.height, s, video, warn=False)
        frames = np.stack(list(iter_frames(video, size=s)))  # (N, S, S, 3): bounded by the upload limits
    n = len(frames)
    imf_file = work / f"{Path(display_name(video)).stem or 'video'}.imf"
    progress(0.0, desc="encoding")
    counter = FrameCounter(progress, n, "encoding")
    stats = encode_frames(res.model, iter(frames), imf_file, fps=info.fps, tables=res.tables, quality=quality,
                          total=n, progress=False, on_frame=lambda i, frame: counter.update(1))
    file_bytes = imf_file.stat().st_size
    progress(0.0, desc="decoding")
    decoded = list(decode_file(imf_file, res.model, tables=res.tables))
    enc = baseline_video = None
    coded = {"imf": decoded}
    if baseline:
        found, skipped = baselines.resolve_codecs([BASELINE])
        notes += skipped
        if found:
            progress(0.0, desc=f"{BASELINE} at the same rate (a few encodes)")
            enc = baselines.encode_at_rate(frames, info.fps, found[0], 8 * file_bytes, work / f"{BASELINE}.mp4")
            coded[BASELINE] = list(baselines.decode_frames(enc.path))
            if 8 * enc.payload_bytes > 8 * file_bytes:
                notes.append(f"{BASELINE} cannot go down to this rate: its coarsest point ({enc.param} "
                             f"{enc.value}) takes {enc.rates()['kbps_payload']:.2f} kbps")
            baseline_video = _write_display(coded[BASELINE], info.fps, work / f"{BASELINE}_decoded.mp4")
    progress(0.0, desc="scoring")
    scorer = res.scorer()
    notes += scorer.skipped.values()
    quality_scores = {name: score_sequences(scorer, frames, out) for name, out in coded.items()}
    decoded_video = _write_display(decoded, info.fps, work / "imf_decoded.mp4")
    return CodecResult(imf_file, file_bytes, stats, decoded_video, enc, baseline_video, quality_scores, notes,
                       target_kbps)
