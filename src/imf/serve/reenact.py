"""The Reenact tab: a source face moved by a driving video (``imf.pipeline.reenact_video``: absolute or
relative motion, optional face crop with paste-back into the full source image, the driving audio kept)."""

from __future__ import annotations

import os
from pathlib import Path

from imf.pipeline import InferenceStats, reenact_video
from imf.serve.resources import Resources
from imf.serve.steps import Progress, no_progress
from imf.serve.limits import Limits
from imf.serve.uploads import check_image_or_video, check_video, renamed

MOTIONS = ("relative", "absolute")


def reenact(res: Resources, source: str | os.PathLike | None, driving: str | os.PathLike | None, work: Path,
            limits: Limits = Limits(), motion: str = "relative", crop: bool = False, compare: bool = False,
            progress: Progress = no_progress) -> InferenceStats:
    """The result video, ``work/reenacted.mp4`` (see ``reenact_video`` for its size in each mode)."""
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    check_image_or_video(source, limits, "source")
    info = check_video(driving, limits, "driving video")
    progress(0.0, desc="finding the faces" if crop else "reenacting")
    with renamed({source: "source", driving: "driving video"}):
        return reenact_video(res.pipeline, source, driving, work / "reenacted.mp4", relative=motion == "relative",
                             crop=crop, compare=compare, max_frames=info.num_frames, progress=False)
