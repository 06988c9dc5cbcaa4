"""Per-frame conditions of whole clips, computed once and cached (landmark fitting is the slow part).

Measured conditions are taken on the clip's frame cache at ``size`` × ``size`` (the same centre square
as the model's frames, only larger: the measures do not depend on the size, but the landmarks are
surer on more pixels) and kept in ``cache_dir()/conditions/<key>.npy``: float32 (N, D), a row of nan
for a frame where nothing was measured. The key hashes the frame cache's own key (clip path, times,
sizes), the extractor's identity and the size, so a changed clip or measure is computed again.

User conditions for training sit beside each clip: ``<clip>.conditions.npy`` or ``.conditions.csv``
(``clip.mp4`` → ``clip.conditions.csv``; a frame folder ``frames/`` → ``frames.conditions.csv``), one
row per frame of the clip.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from imf.cache import cache_dir
from imf.data.frame_cache import frame_cache
from imf.editing.conditions import ConditionExtractor, check_track, extractor_identity, read_condition_file, reorder
from imf.errors import InputError
from imf.progress import progress_bar


def measure_clip(path: str | os.PathLike, extractor: ConditionExtractor, size: int = 256,
                 progress: bool = True) -> np.ndarray:
    """(N, extractor.dim) float32 conditions of every frame of a clip (nan rows where none), cached."""
    frames_file = frame_cache(path, size)
    key = hashlib.sha256(f"{frames_file.stem}|{extractor_identity(extractor)}|{size}".encode()).hexdigest()[:32]
    folder = cache_dir() / "conditions"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{key}.npy"
    frames = np.load(frames_file, mmap_mode="r")  # (N, S, S, 3) uint8
    if out.exists():
        try:
            cached = np.load(out)
            if cached.shape == (len(frames), extractor.dim):
                return cached
        except (OSError, ValueError, EOFError):
            pass
    values = np.full((len(frames), extractor.dim), np.nan, dtype=np.float32)
    for i in progress_bar(range(len(frames)), desc=f"conditions {Path(path).name}", unit="frame",
                  enabled=progress):
        v = extractor(np.ascontiguousarray(frames[i]))
        if v is not None:
            values[i] = v
    tmp = folder / f".{key}.npy.partial"
    with open(tmp, "wb") as f:
        np.save(f, values)
    os.replace(tmp, out)
    return values


def sidecar_path(clip: str | os.PathLike) -> Path:
    """The user condition file of a clip (``.conditions.npy`` first, else ``.conditions.csv``)."""
    clip = Path(clip)
    stem = clip.name if clip.is_dir() else clip.stem
    for ext in (".npy", ".csv"):
        candidate = clip.with_name(f"{stem}.conditions{ext}")
        if candidate.is_file():
            return candidate
    raise InputError(f"{clip}: no user condition file beside it (expected {stem}.conditions.npy or "
                     f"{stem}.conditions.csv with one row per frame)")


def clip_file_conditions(clip: str | os.PathLike, names: tuple[str, ...], num_frames: int) -> np.ndarray:
    """(num_frames, len(names)) float32 from a clip's user condition file, checked against ``names``."""
    path = sidecar_path(clip)
    track = read_condition_file(path, names)
    check_track(track, names, str(path))
    if len(track) != num_frames:
        raise InputError(f"{path} has {len(track)} row(s), the clip {clip} has {num_frames} frame(s)")
    return reorder(track, names).astype(np.float32)
