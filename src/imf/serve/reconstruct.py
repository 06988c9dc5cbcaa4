"""The Reconstruct tab: a video rebuilt from its first frame and one token per frame, shown beside the
original, scored against the original and beside copying the reference (``imf.eval.reconstruct_eval``,
the protocol of ``imf eval``: the reference frame itself is not scored)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from imf.eval.reconstruct_eval import evaluate_video
from imf.pipeline import check_frame_size
from imf.serve.resources import Resources
from imf.serve.steps import FrameCounter, Progress, no_progress
from imf.serve.limits import Limits
from imf.serve.uploads import check_video, renamed


@dataclass(frozen=True)
class ReconstructResult:
    """video: reference | original | reconstruction, side by side (3S × S), every frame but the reference.
    model / copy: mean per-frame metrics of the reconstruction and of copying the reference, against the
    original. frames: frames scored."""

    video: Path
    frames: int
    fps: float
    model: dict[str, float]
    copy: dict[str, float]
    notes: list[str] = field(default_factory=list)


def reconstruct(res: Resources, video: str | os.PathLike | None, work: Path, limits: Limits = Limits(),
                progress: Progress = no_progress) -> ReconstructResult:
    info = check_video(video, limits, "video", min_frames=2)
    uploads = {video: "video"}
    with renamed(uploads):
        check_frame_size(info.width, info.height, res.resolution, video, warn=False)
    progress(0.0, desc="loading the metrics")
    scorer = res.scorer()
    out = work / "reconstruction.mp4"
    with renamed(uploads):
        row = evaluate_video(res.model, video, scorer, batch_size=res.pipeline.batch_size, compare_path=out,
                             progress=FrameCounter(progress, info.num_frames, "reconstructing"))
    return ReconstructResult(out, row.num_frames, row.fps, row.metrics, row.copy_metrics, list(scorer.skipped.values()))
