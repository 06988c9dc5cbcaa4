"""Cut one clip out of a raw video: its span, its face square, resized, as PNG frames (a worker's job).

Decoding starts at a keyframe a second before the span (a seek), and each decoded frame is placed by its
timestamp: frame number ``round(t · fps)`` for "frame" spans (VFHQ), ``t`` itself for "second" spans.
For a constant-frame-rate video (YouTube's are) the numbers are the ones ``ffmpeg -vf select`` counts
from the start, without decoding everything before the clip. Only frames inside the span are converted
to RGB. The crop is one still square for the whole clip (``ClipSpec``), moved into the frame and
shrunk if it does not fit, then resized with Pillow's antialiased bicubic filter
(``imf.data.video.resize_center_crop``) and encoded as PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from imf.data.crop import CropBox, square_box
from imf.data.face_detect import Box
from imf.data.prepare.spec import ClipSpec
from imf.data.shards import PNG_LEVEL, encode_png
from imf.data.video import _frame_to_rgb, resize_center_crop

_SEEK_MARGIN = 1.0  # s before the span: keyframe indices of downloaded videos are approximate


@dataclass
class CutResult:
    """What became of one clip. frames: PNG bytes (None on failure); meta: fps, raw size, box, frames
    expected; error: why it failed; broken: the raw video itself could not be read (not just this clip)."""

    clip: str
    frames: list[bytes] | None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    broken: bool = False


def crop_square(spec: ClipSpec, width: int, height: int) -> CropBox:
    """The clip's crop square in pixels of a width × height frame."""
    x0, y0, x1, y1 = spec.box
    if spec.box_space is not None:
        sx, sy = width / spec.box_space[0], height / spec.box_space[1]
        x0, x1, y0, y1 = x0 * sx, x1 * sx, y0 * sy, y1 * sy
    w, h = x1 - x0, y1 - y0
    side = max(w, h) if spec.square == "max" else min(w, h)
    face = Box((x0 + x1 - side) / 2, (y0 + y1 - side) / 2, side, side)
    return square_box(face, 1.0, width, height)


class _Picker:
    """Decides which decoded frames (time t from the video's start) make the clip's frames."""

    def __init__(self, spec: ClipSpec, rate: float) -> None:
        self.spec, self.rate = spec, rate
        if spec.unit == "frame":
            self.t0, self.t1 = spec.start / rate, spec.stop / rate
            self.expected = int(spec.stop - spec.start)
        else:
            self.t0, self.t1 = spec.start, spec.stop
            out_rate = spec.fps or rate
            self.expected = max(1, int(round((self.t1 - self.t0) * out_rate)))
        self.k = 0  # resampling: output frames made so far
        self.prev: tuple[float, Any] | None = None  # resampling: the last frame before the next instant

    def wants(self, t: float) -> bool:
        """Whether a frame at t may be needed (so it is converted to RGB)."""
        tol = 1.0 / self.rate
        return self.t0 - tol <= t < self.t1 + tol

    def done(self, t: float) -> bool:
        return t >= self.t1 + 1.0 / self.rate

    def take(self, t: float, frame) -> list:
        """The clip frames this decoded frame gives (each an RGB array or the PyAV frame to convert)."""
        spec = self.spec
        if spec.unit == "frame":
            n = int(round(t * self.rate))
            return [frame] if spec.start <= n < spec.stop else []
        if spec.fps is None:  # every raw frame of [t0, t1), a quarter frame of tolerance for rounded timestamps
            eps = 0.25 / self.rate
            return [frame] if self.t0 - eps <= t < self.t1 - eps else []
        out = []  # resampled: for each instant t0 + k / fps, the nearer of the frames around it
        while self.k < self.expected:
            instant = self.t0 + self.k / spec.fps
            if t < instant:
                break
            if self.prev is not None and abs(self.prev[0] - instant) <= abs(t - instant):
                out.append(self.prev[1])
            else:
                out.append(frame)
            self.k += 1
        self.prev = (t, frame)
        return out

    def flush(self) -> list:
        """At the end of the video: instants less than half a frame after the last frame get it."""
        out = []
        while self.spec.unit == "second" and self.spec.fps is not None and self.prev is not None \
                and self.k < self.expected and self.t0 + self.k / self.spec.fps < self.prev[0] + 0.5 / self.rate:
            out.append(self.prev[1])
            self.k += 1
        return out


def cut_clip(spec: ClipSpec, path: str | Path, size: int, png_level: int = PNG_LEVEL) -> CutResult:
    """Cut ``spec`` out of the raw video ``path`` at size × size. Never raises for a bad video or clip:
    the failure is in the result (``broken`` when the video itself is unreadable)."""
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
        return CutResult(spec.clip, None, error=f"not a readable video ({e})", broken=True)
    try:
        return _cut(container, spec, size, png_level)
    except av.FFmpegError as e:
        return CutResult(spec.clip, None, error=f"the video could not be decoded ({e})", broken=True)
    except Exception as e:  # one clip's unforeseen failure must not stop the others
        return CutResult(spec.clip, None, error=f"{type(e).__name__}: {e}")
    finally:
        container.close()


def _cut(container, spec: ClipSpec, size: int, png_level: int) -> CutResult:
    if not container.streams.video:
        return CutResult(spec.clip, None, error="the file has no video stream", broken=True)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate_q = stream.average_rate or stream.guessed_rate or stream.base_rate
    rate = float(rate_q) if rate_q else 25.0
    tb = stream.time_base
    origin = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
    picker = _Picker(spec, rate)
    if picker.t0 > _SEEK_MARGIN and tb:
        container.seek(int((origin + picker.t0 - _SEEK_MARGIN) / tb), stream=stream, backward=True,
                       any_frame=False)
    frames: list[bytes] = []
    box: CropBox | None = None
    raw_size = None

    def emit(items: list) -> None:  # PyAV frames -> cropped, resized PNGs
        nonlocal box, raw_size
        for item in items:
            image = _frame_to_rgb(item)
            if box is None:
                raw_size = (image.shape[1], image.shape[0])
                box = crop_square(spec, *raw_size)
            region = image[box.y: box.y + box.side, box.x: box.x + box.side]
            frames.append(encode_png(resize_center_crop(region, size), png_level))

    last_t = None
    for frame in container.decode(stream):
        t = (float(frame.time) - origin) if frame.time is not None else \
            (last_t + 1.0 / rate if last_t is not None else 0.0)
        last_t = t
        if picker.done(t):
            break
        if not picker.wants(t):
            continue
        emit(picker.take(t, frame))
    emit(picker.flush())
    meta = {"fps": spec.fps or rate, "expected_frames": picker.expected, "raw_size": list(raw_size or []),
            "raw_fps": rate, "box": [box.x, box.y, box.side] if box else None}
    if len(frames) < 2:
        seen = f"the video ends at {last_t:.2f} s" if last_t is not None else "the video has no frame"
        return CutResult(spec.clip, None, meta, error=f"{len(frames)} frame(s) in the clip's span "
                                                      f"[{picker.t0:.2f} s, {picker.t1:.2f} s); {seen}")
    return CutResult(spec.clip, frames, meta)
