"""Video and image I/O with PyAV: probe, lazy frame decoding, an H.264 writer, tensor conversion.

Conventions:
- A frame in numpy is ``uint8`` of shape (H, W, 3), RGB. Frames are decoded one at a time: no function
  here holds a whole video in memory.
- A frame batch in torch is ``float32`` of shape (B, 3, H, W) with values in [0, 1] (docs/imf-format.md).
- A "video" may be a video file (anything FFmpeg reads: mp4, avi, mov, mkv, webm, ...), a folder of
  png/jpg frames (sorted by name, numbers compared as numbers: ``f2.png`` before ``f10.png``), or a
  single image file (one frame). Frame folders and images have no frame rate of their own: ``probe``
  reports ``DEFAULT_IMAGE_FPS``.
- Rotation metadata of phone videos (the display matrix) is applied, as players do.
- Resizing uses Pillow's BICUBIC filter, which is antialiased when downscaling (Pillow widens the filter
  support by the scale factor), after a centre square crop (``resize_center_crop``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from imf.errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".flv", ".y4m"})
DEFAULT_IMAGE_FPS = 25.0
# Output container names by file extension (what VideoWriter can write).
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video, frame folder or image.

    width, height: size of the decoded (and rotated) frames in pixels. fps: frames per second.
    num_frames: exact number of frames. duration: seconds. has_audio: an audio stream is present.
    """

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool


# ----------------------------------------------------------------------------------------- sources
def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (numbers compared as numbers)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e


def _open_video(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def _apply_rotation(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate as a player would. ``rotation`` is PyAV's ``frame.rotation``: the display matrix angle in
    degrees, counter-clockwise, as ``np.rot90`` counts (so -90 means a quarter turn clockwise)."""
    k = int(round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
    rotation = getattr(frame, "rotation", 0) or 0
    return _apply_rotation(image, rotation)


# ------------------------------------------------------------------------------------------- probe
def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, exact frame count, duration and audio presence of a video, frame folder or image.

    Raises InputError for a missing path, a file that is not a video or image, or a video with no frame.
    The frame count comes from the container when it stores one, else from decoding the whole stream.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise InputError(f"{path}: folder holds no png/jpg frames")
        h, w = _read_image(files[0]).shape[:2]
        n = len(files)
        return VideoInfo(path, w, h, DEFAULT_IMAGE_FPS, n, n / DEFAULT_IMAGE_FPS, False)
    if is_image_file(path):
        h, w = _read_image(path).shape[:2]
        return VideoInfo(path, w, h, DEFAULT_IMAGE_FPS, 1, 1 / DEFAULT_IMAGE_FPS, False)

    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else DEFAULT_IMAGE_FPS
        has_audio = bool(container.streams.audio)
        try:
            frames = container.decode(stream)
            first = next(frames, None)
            if first is None:
                raise InputError(f"{path}: video has no frames")
            h, w = _frame_to_rgb(first).shape[:2]
            n = stream.frames
            if n <= 0:  # container without a frame count (e.g. mkv, webm): count by decoding
                n = 1 + sum(1 for _ in frames)
        except av.FFmpegError as e:
            raise InputError(f"{path}: video could not be decoded ({e})") from e
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = n / fps
        return VideoInfo(path, w, h, fps, n, duration, has_audio)
    finally:
        container.close()


# ------------------------------------------------------------------------------------------ frames
def resize_center_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop (side = the shorter side), then resize to (size, size, 3).

    frame: uint8 (H, W, 3). Pillow BICUBIC, antialiased when downscaling. Returns a new uint8 array.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = frame[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    resized = Image.fromarray(np.ascontiguousarray(square)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def iter_frames(
    path: str | os.PathLike, size: int | None = None, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Yield frames ``start`` ≤ i < ``stop`` of a video, frame folder or image, lazily, as uint8 (H, W, 3) RGB.

    size: if given, each frame goes through ``resize_center_crop(frame, size)``.
    Frame indices are exact: frames before ``start`` are decoded and dropped, never seeked past.
    Raises InputError when the input cannot be opened or decoding fails.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad frame range start={start}, stop={stop}")
    path = Path(path)
    _check_exists(path)
    if path.is_dir() or is_image_file(path):
        files = list_frame_files(path) if path.is_dir() else [path]
        for f in files[start:stop]:
            image = _read_image(f)
            yield resize_center_crop(image, size) if size else image
        return

    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                if stop is not None and i >= stop:
                    break
                if i < start:
                    continue
                image = _frame_to_rgb(frame)
                yield resize_center_crop(image, size) if size else image
        except av.FFmpegError as e:
            raise InputError(f"{path}: video could not be decoded ({e})") from e
    finally:
        container.close()


# ------------------------------------------------------------------------------------------ tensors
def to_tensor(frames: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 frames (H, W, 3), (N, H, W, 3) or a list of (H, W, 3) -> float32 (B, 3, H, W) in [0, 1]."""
    array = np.stack(frames) if isinstance(frames, (list, tuple)) else np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got {array.dtype} {array.shape}")
    if not array.flags.writeable:  # e.g. a read-only memmap: torch wants memory it may write
        array = array.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(array))  # (B, H, W, 3) uint8
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (B, H, W, 3) or (H, W, 3); clamped and rounded."""
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise ValueError(f"expected a (B, 3, H, W) or (3, H, W) tensor, got {tuple(tensor.shape)}")
    t = tensor.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()
    return t.movedim(-3, -1).numpy()  # (..., H, W, 3)


# ------------------------------------------------------------------------------------------ writer
def _fps_fraction(fps: float | Fraction) -> Fraction:
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    # 1001 covers NTSC rates: 29.97002997 -> 30000/1001, 23.976023976 -> 24000/1001.
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """Write uint8 (H, W, 3) RGB frames to an H.264 (libx264, yuv420p) mp4/mov/mkv file.

    Use as a context manager; the file appears under its name only when closed without error
    (it is written to a temporary name beside it and renamed). yuv420p needs even sizes: an odd width
    or height is padded by one row/column repeating the edge (``self.out_width``/``out_height``).

    audio_from: a video whose audio stream is re-encoded (AAC) into the output, cut to the output's
    duration (``frames written / fps``); nothing is added if it has no audio.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        width: int,
        height: int,
        crf: int = 18,
        audio_from: str | os.PathLike | None = None,
        preset: str = "medium",
    ) -> None:
        self.path = Path(path)
        muxer = _MUXERS.get(self.path.suffix.lower())
        if muxer is None:
            raise InputError(f"{self.path}: can only write {', '.join(sorted(_MUXERS))} files")
        if width <= 0 or height <= 0:
            raise ValueError(f"bad video size {width}x{height}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {crf}")
        self.width, self.height = width, height
        self.out_width, self.out_height = width + width % 2, height + height % 2
        self.rate = _fps_fraction(fps)
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._audio: _AudioCopier | None = None
        self._container = av.open(str(self._tmp), mode="w", format=muxer)
        try:
            self._video = self._container.add_stream("libx264", rate=self.rate)
            self._video.width, self._video.height = self.out_width, self.out_height
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
            if audio_from is not None:
                self._audio = _AudioCopier.open(Path(audio_from), self._container)
        except BaseException:
            self.abort()
            raise

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (height, width, 3) RGB frame."""
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"expected a uint8 frame of shape {(self.height, self.width, 3)}, got {frame.dtype} {frame.shape}"
            )
        if (self.out_height, self.out_width) != (self.height, self.width):
            pad = ((0, self.out_height - self.height), (0, self.out_width - self.width), (0, 0))
            frame = np.pad(frame, pad, mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames_written  # in units of 1/rate, the codec's time base
        vf.time_base = 1 / self.rate
        for packet in self._video.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.copy_until(self.frames_written / self.rate)

    def close(self) -> None:
        """Flush the encoders and move the finished file to its name."""
        if self._container is None:
            return
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frame was written; not creating an empty video")
        try:
            if self._audio is not None:
                self._audio.copy_until(self.frames_written / self.rate)
                self._audio.flush()
                self._audio = None
            for packet in self._video.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self._container = None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop without finishing: the partial file is deleted and nothing appears under ``path``."""
        if self._audio is not None:
            self._audio.close_input()
            self._audio = None
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:  # closing a half-written file may fail; it is deleted anyway
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AudioCopier:
    """Decodes the audio of a source video and re-encodes it (AAC) into an output container, on demand up
    to a time, so audio and video packets stay interleaved. Output timestamps count samples from 0."""

    def __init__(self, source: av.container.InputContainer, out: av.container.OutputContainer) -> None:
        self._source = source
        in_stream = source.streams.audio[0]
        self._rate = in_stream.rate or 48000
        layout = "mono" if in_stream.channels == 1 else "stereo"
        self._stream = out.add_stream("aac", rate=self._rate)
        self._stream.layout = layout
        self._out = out
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self._rate)
        self._frames = (f for f in source.decode(in_stream))
        self._samples = 0  # samples sent to the encoder so far
        self._pending: list[np.ndarray] = []  # decoded samples not yet sent, (channels, n) each
        self._done = False

    @classmethod
    def open(cls, path: Path, out: av.container.OutputContainer) -> _AudioCopier | None:
        _check_exists(path)
        source = _open_video(path) if not path.is_dir() else None
        if source is None or not source.streams.audio:
            log.warning("%s has no audio stream; writing a silent video", path)
            if source is not None:
                source.close()
            return None
        return cls(source, out)

    def copy_until(self, seconds: Fraction) -> None:
        """Encode the source's audio up to ``seconds``; decoded samples past it wait in a buffer."""
        target = int(seconds * self._rate)
        while not self._done and self._samples + self._buffered() < target:
            frame = next(self._frames, None)
            if frame is None:
                self._done = True
                break
            for chunk in self._resampler.resample(frame):
                self._pending.append(chunk.to_ndarray())  # (channels, samples) planar float
        keep = min(target - self._samples, self._buffered())
        if keep <= 0:
            return
        data = np.concatenate(self._pending, axis=1)
        self._pending = [data[:, keep:]] if keep < data.shape[1] else []
        chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, :keep]), format="fltp",
                                           layout=self._stream.layout.name)
        chunk.sample_rate = self._rate
        chunk.pts = self._samples
        chunk.time_base = Fraction(1, self._rate)
        for packet in self._stream.encode(chunk):
            self._out.mux(packet)
        self._samples += keep

    def _buffered(self) -> int:
        return sum(p.shape[1] for p in self._pending)

    def flush(self) -> None:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self.close_input()

    def close_input(self) -> None:
        self._source.close()
