"""VMAF through the static ffmpeg binary of imageio-ffmpeg and its libvmaf filter.

``vmaf(ref_video, dist_video)`` returns the mean per-frame VMAF (model ``vmaf_v0.6.1``, built into
libvmaf; 0..100, higher is better) of the distorted video against the reference, or None with a
one-line log message when the ffmpeg binary has no libvmaf filter. Both videos must have the same
size and frame count; timestamps are reset on both (``setpts=PTS-STARTPTS``) so frames pair in order.
libvmaf converts to YUV itself; VMAF is a luma-dominated metric, unlike our RGB metrics.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from imf.errors import InputError

log = logging.getLogger(__name__)

VMAF_MODEL = "version=vmaf_v0.6.1"


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg wheel."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=None)
def vmaf_available() -> bool:
    """True if ``ffmpeg -filters`` lists libvmaf (checked once per process)."""
    try:
        cmd = [ffmpeg_exe(), "-hide_banner", "-filters"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError, RuntimeError):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in out.splitlines())


def vmaf(ref_video: str | os.PathLike, dist_video: str | os.PathLike, threads: int = 0) -> float | None:
    """Mean VMAF (0..100) of ``dist_video`` against ``ref_video``; None if libvmaf is missing.

    Raises InputError if a file is missing or ffmpeg cannot compare them (e.g. different sizes).
    ``threads``: libvmaf worker threads (0 = its default).
    """
    ref, dist = Path(ref_video), Path(dist_video)
    for p in (ref, dist):
        if not p.is_file():
            raise InputError(f"VMAF: no such video file: {p}")
    if not vmaf_available():
        log.warning("VMAF skipped: this ffmpeg binary (%s) has no libvmaf filter", ffmpeg_exe())
        return None
    with tempfile.TemporaryDirectory(prefix="imf-vmaf-") as tmp:
        # The log path is relative to ffmpeg's working directory, so no escaping of paths in the filter graph.
        graph = (
            "[0:v]setpts=PTS-STARTPTS[dist];[1:v]setpts=PTS-STARTPTS[ref];"
            f"[dist][ref]libvmaf=model={VMAF_MODEL}:log_fmt=json:log_path=vmaf.json:n_threads={int(threads)}"
        )
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
               "-i", str(dist.resolve()), "-i", str(ref.resolve()), "-lavfi", graph, "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        log_file = Path(tmp) / "vmaf.json"
        if proc.returncode != 0 or not log_file.exists():
            first = (proc.stderr.strip().splitlines() or ["no output"])[0]  # the cause; later lines are fallout
            raise InputError(f"VMAF: ffmpeg could not compare {dist} with {ref}: {first.split('] ', 1)[-1]}")
        result = json.loads(log_file.read_text())
    return float(result["pooled_metrics"]["vmaf"]["mean"])
