"""What the web app accepts: size and length limits, and the checks every upload goes through before any
model runs. A rejected upload raises ``InputError`` with a message written for the page: it names the
file as the user called it, never the server's temporary path."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from imf.data.video import VideoInfo, is_image_file, iter_frames, probe
from imf.errors import InputError
from imf.serve.limits import MB, Limits


def display_name(path: str | os.PathLike) -> str:
    """The name the user gave the file (Gradio keeps it as the last part of the temporary path)."""
    return Path(path).name


def _check_file(path: str | os.PathLike | None, what: str, limits: Limits) -> Path:
    if path is None or str(path) == "":
        raise InputError(f"no {what} given: upload one first")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {display_name(path)}: the upload did not arrive; try again")
    size = path.stat().st_size
    if size > limits.max_upload_mb * MB:
        raise InputError(f"{what} {display_name(path)} is {size / MB:.1f} MB: this server takes files up to "
                         f"{limits.max_upload_mb:g} MB")
    if size == 0:
        raise InputError(f"{what} {display_name(path)} is empty")
    return path


# The library's messages name command-line flags; the page names its own controls.
CONTROL_NAMES = {"--no-crop": "untick \u201cface crop\u201d", "--crop": "\u201cface crop\u201d"}


def page_message(text: str, uploads: Mapping[str | os.PathLike, str] | None = None) -> str:
    """A library message for the page: each upload's temporary path becomes "<what> <its own name>",
    command-line flags become the names of the page's controls."""
    for path, what in (uploads or {}).items():
        text = text.replace(str(path), f"{what} {display_name(path)}")
    for flag, control in CONTROL_NAMES.items():
        text = text.replace(f"pass {flag}", control).replace(flag, control)
    return text


@contextlib.contextmanager
def renamed(uploads: Mapping[str | os.PathLike, str]) -> Iterator[None]:
    """Re-raise the library's InputErrors with ``page_message`` (uploads: temporary path -> what it is)."""
    try:
        yield
    except InputError as e:
        raise InputError(page_message(str(e), uploads)) from None


def _rename(error: InputError, path: Path, what: str) -> InputError:
    return InputError(page_message(str(error), {path: what}))


def check_video(path: str | os.PathLike | None, limits: Limits, what: str = "video",
                min_frames: int = 1) -> VideoInfo:
    """The probed video, after the size, length and frame-size checks; InputError otherwise."""
    path = _check_file(path, what, limits)
    if is_image_file(path):
        raise InputError(f"{what} {display_name(path)} is an image: upload a video (mp4, mov, mkv, webm, ...)")
    try:
        info = probe(path)
    except InputError as e:
        raise _rename(e, path, what) from None
    name = display_name(path)
    if info.width * info.height > limits.max_pixels:
        raise InputError(f"{what} {name}: frames of {info.width}x{info.height} are larger than this server takes "
                         f"({limits.max_pixels} pixels)")
    if info.duration > limits.max_seconds or info.num_frames > limits.max_frames:
        raise InputError(f"{what} {name} is {info.duration:.1f} s long ({info.num_frames} frames): this server "
                         f"takes videos up to {limits.max_seconds:g} s and {limits.max_frames} frames; cut it shorter")
    if info.num_frames < min_frames:
        raise InputError(f"{what} {name} has {info.num_frames} frame(s); it needs at least {min_frames}")
    return info


def check_image_or_video(path: str | os.PathLike | None, limits: Limits, what: str = "image") -> VideoInfo:
    """An image, or a video (its first frame is what is used), after the same checks."""
    path = _check_file(path, what, limits)
    if not is_image_file(path):
        return check_video(path, limits, what)
    try:
        info = probe(path)
    except InputError as e:
        raise _rename(e, path, what) from None
    except Image.DecompressionBombError:  # Pillow refuses images far over its own pixel limit
        raise InputError(f"{what} {display_name(path)} is larger than this server takes "
                         f"({limits.max_pixels} pixels)") from None
    if info.width * info.height > limits.max_pixels:
        raise InputError(f"{what} {display_name(path)}: {info.width}x{info.height} is larger than this server "
                         f"takes ({limits.max_pixels} pixels)")
    return info


def first_frame(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """uint8 (H, W, 3) RGB: the image, or a video's first frame."""
    path = Path(path)
    try:
        frame = next(iter_frames(path, stop=1), None)
    except InputError as e:
        raise _rename(e, path, what) from None
    if frame is None:
        raise InputError(f"{what} {display_name(path)}: no frame could be read")
    return frame
