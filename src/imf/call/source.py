"""What a call sends: a video file played as if live (at its own frame rate), or a camera (PyAV's v4l2 input).

Frames come out as the codec takes them: uint8 (S, S, 3), centre-cropped and resized to the model's
resolution S (``imf.data.video.resize_center_crop``), as ``imf encode`` reads a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imf.errors import InputError

DEFAULT_CAMERA_FPS = 30.0


@dataclass
class FrameSource:
    name: str
    fps: float
    live: bool  # a camera: frames arrive at their own pace, nothing to pace or skip here
    num_frames: int | None  # None for a camera
    frames: Iterator[np.ndarray]


def is_camera(path: str | os.PathLike) -> bool:
    return str(path).startswith("/dev/video")


def open_source(path: str | os.PathLike, size: int) -> FrameSource:
    """A video file, frame folder or image (``imf.data.video``), or a v4l2 camera given as /dev/videoN."""
    if is_camera(path):
        return _open_camera(str(path), size)
    from imf.data.video import iter_frames, probe

    info = probe(path)  # InputError for a missing or unreadable file
    return FrameSource(str(path), info.fps, False, info.num_frames, iter_frames(path, size=size))


def _open_camera(device: str, size: int) -> FrameSource:
    import av

    from imf.data.video import resize_center_crop

    if not Path(device).exists():
        raise InputError(f"{device}: no such camera device")
    try:
        container = av.open(device, format="v4l2")
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{device}: cannot open the camera ({e})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{device}: has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else DEFAULT_CAMERA_FPS

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield resize_center_crop(frame.to_ndarray(format="rgb24"), size)
        except av.FFmpegError as e:
            raise InputError(f"{device}: the camera stopped ({e})") from None
        finally:
            container.close()

    return FrameSource(device, fps, True, None, frames())
