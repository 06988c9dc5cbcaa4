"""A decoded copy of each clip at the model's resolution, kept on disk as a ``.npy`` file read by memmap.

Decoding an mp4 at random frame indices is slow (every access decodes from the last keyframe), so each
clip is decoded once, in order, centre-cropped and resized to S×S, into
``cache_dir()/frames/<key>.npy`` holding uint8 (N, S, S, 3). The key hashes the clip's absolute path,
modification time and size (for a frame folder: every frame file's name, time and size) and S, so an
edited clip is decoded again. Files are written under a temporary name and renamed, so a crash or two
processes decoding the same clip at once never leave a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from imf.cache import cache_dir
from imf.data.video import iter_frames, list_frame_files
from imf.errors import InputError

log = logging.getLogger(__name__)

_FORMAT_VERSION = "1"  # bump when the decoding or resizing changes, to invalidate old caches


def _cache_key(path: Path, size: int) -> str:
    path = path.resolve()
    h = hashlib.sha256(f"imf-frames-v{_FORMAT_VERSION}|{path}|{size}".encode())
    files = list_frame_files(path) if path.is_dir() else [path]
    for f in files:
        st = f.stat()
        h.update(f"|{f.name}|{st.st_mtime_ns}|{st.st_size}".encode())
    return h.hexdigest()[:32]


def _valid_cache(path: Path, size: int) -> bool:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return False
    return array.dtype == np.uint8 and array.ndim == 4 and array.shape[1:] == (size, size, 3) and len(array) > 0


def frame_cache(path: str | os.PathLike, size: int) -> Path:
    """Path of the ``.npy`` (N, size, size, 3) uint8 copy of a clip, decoding it first if needed.

    Raises InputError when the clip cannot be read or has no frame.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    folder = cache_dir() / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{_cache_key(path, size)}.npy"
    if out.exists():
        if _valid_cache(out, size):
            return out
        log.warning("frame cache %s of %s is damaged; decoding again", out, path)
        out.unlink(missing_ok=True)

    raw_fd, raw_name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".raw")
    npy_name = raw_name[: -len(".raw")] + ".npy.partial"
    try:
        # The frame count is only certain after decoding, and the .npy header (which holds the shape)
        # comes first: write raw frames, then the header, then copy the raw bytes behind it.
        n = 0
        with os.fdopen(raw_fd, "wb") as raw:
            for frame in iter_frames(path, size=size):
                raw.write(frame.tobytes())
                n += 1
        if n == 0:
            raise InputError(f"{path}: no frames could be decoded")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (n, size, size, 3)}
        with open(npy_name, "wb") as npy, open(raw_name, "rb") as raw:
            np.lib.format.write_array_header_1_0(npy, header)
            shutil.copyfileobj(raw, npy, 1 << 22)
        os.replace(npy_name, out)
    finally:
        for name in (raw_name, npy_name):
            Path(name).unlink(missing_ok=True)
    return out


def load_frames(path: str | os.PathLike, size: int) -> np.ndarray:
    """A read-only memmap (N, size, size, 3) uint8 of a clip's frames (decoding it once if needed)."""
    return np.load(frame_cache(path, size), mmap_mode="r")
