"""The Reenact tab: a source face moved by a driving video (``imf.pipeline.reenact_video``: absolute or
relative motion, optional face crop pasted back into the full source image under a feathered mask or as a
hard square, the driving audio kept)."""

from __future__ import annotations

import os
from pathlib import Path

from imf.data.crop import DEFAULT_PASTE, PASTE_MODES
from imf.pipeline import InferenceStats, reenact_video
from imf.serve.resources import Resources
from imf.serve.steps import Progress, no_progress
from imf.serve.limits import Limits
from imf.serve.uploads import check_image_or_video, check_video, renamed

MOTIONS = ("relative", "absolute")


def reenact(res: Resources, source: str | os.PathLike | None, driving: str | os.PathLike | None, work: Path,
            limits: Limits = Limits(), motion: str = "relative", crop: bool = False, compare: bool = False,
            paste: str = DEFAULT_PASTE, progress: Progress = no_progress) -> InferenceStats:
    """The result video, ``work/reenacted.mp4`` (see ``reenact_video`` for its size in each mode). paste:
    with ``crop``, "soft" (feathered mask) or "hard" (the square as it is)."""
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    if paste not in PASTE_MODES:
        raise ValueError(f"paste must be one of {PASTE_MODES}, got {paste!r}")
    check_image_or_video(source, limits, "source")
    info = check_video(driving, limits, "driving video")
    progress(0.0, desc="finding the faces" if crop else "reenacting")
    with renamed({source: "source", driving: "driving video"}):
        return reenact_video(res.pipeline, source, driving, work / "reenacted.mp4", relative=motion == "relative",
                             crop=crop, compare=compare, max_frames=info.num_frames, paste=paste,
                             progress=False)
