"""Face-centred square crops of videos and images (in the manner of FOMM's ``crop-video.py``).

Video algorithm (two decoding passes, one frame in memory at a time):
1. Pass 1: split the video into shots where the colour histograms of consecutive frames differ by more
   than ``cut_threshold`` (total-variation distance, in [0, 1]); detect faces every ``detect_every``
   frames and on each shot's first frame, keeping the largest face.
2. Per shot: a running median over 5 detections removes one-off false or missed detections; the shot is
   cut into segments where the face box overlaps the segment's median box by less than ``min_iou``
   (the head moved away) for at least 3 detections in a row (shorter runs stay in the segment before
   them). Each segment gets ONE still box: the median face box enlarged ``scale``
   times around its centre and clamped inside the frame. Segments shorter than ``min_frames`` and shots
   without a face are reported and skipped.
3. Pass 2: each segment is cropped, resized to ``size`` × ``size`` and written as
   ``<out>/<stem>_<k:03d>.mp4`` (H.264, the source's frame rate).

Images: ``crop_image`` cuts one face-centred square; ``paste_crop`` puts a (generated) crop back, by default
under ``feather_mask`` (1 in the middle, a raised cosine down to 0 on the crop's border) so no square seam
shows, or as a hard square.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imf.data.face_detect import Box, FaceDetector
from imf.data.video import VideoWriter, iter_frames, probe, resize_center_crop
from imf.errors import ConfigError, InputError
from imf.progress import progress_bar

_MEDIAN_WINDOW = 5  # detections, for the running median that removes one-off errors
_MIN_DETECTIONS = 3  # a segment needs this many consistent detections; fewer are absorbed by the previous


@dataclass(frozen=True)
class CropConfig:
    """size: output side in pixels. scale: crop side / face side. detect_every: frames between detections.
    min_face: smallest face, as a fraction of the frame's shorter side. cut_threshold: histogram distance
    in [0, 1] that starts a new shot. min_iou: overlap below which the face has moved to a new segment.
    min_frames: shortest segment written. crf: x264 quality of the output (lower = better)."""

    size: int = 256
    scale: float = 1.8
    detect_every: int = 5
    min_face: float = 0.1
    cut_threshold: float = 0.3
    min_iou: float = 0.3
    min_frames: int = 8
    crf: int = 18

    def __post_init__(self) -> None:
        checks = {
            "size": self.size >= 8, "scale": self.scale >= 1.0, "detect_every": self.detect_every >= 1,
            "min_face": 0 < self.min_face < 1, "cut_threshold": 0 < self.cut_threshold <= 1,
            "min_iou": 0 <= self.min_iou <= 1, "min_frames": self.min_frames >= 1, "crf": 0 <= self.crf <= 51,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"crop {name}={getattr(self, name)!r} is out of range")


@dataclass(frozen=True)
class CropBox:
    """A square region of the source frame: top-left (x, y) and side, in pixels."""

    x: int
    y: int
    side: int


@dataclass(frozen=True)
class CroppedClip:
    """One written clip: frames [start, stop) of the source, cropped with ``box``."""

    path: Path
    start: int
    stop: int
    box: CropBox


@dataclass
class CropResult:
    """What ``crop_video`` wrote and what it skipped (one human-readable reason per skipped part)."""

    source: Path
    clips: list[CroppedClip] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- helpers
def colour_histogram(frame: np.ndarray, bins: int = 32) -> np.ndarray:
    """(3, bins) per-channel histograms of a uint8 (H, W, 3) frame, each summing to 1 (subsampled ×4)."""
    small = frame[::4, ::4].reshape(-1, 3)  # (P, 3)
    idx = small.astype(np.int64) * bins // 256
    hist = np.stack([np.bincount(idx[:, c], minlength=bins) for c in range(3)]).astype(np.float64)
    return hist / max(1, len(small))


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between two (3, bins) histograms, averaged over channels: 0 = same, 1 = disjoint."""
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


def square_box(face: Box, scale: float, width: int, height: int) -> CropBox:
    """The square of side ``scale × max(face.w, face.h)`` centred on the face, shrunk and shifted to fit
    inside a width × height frame."""
    side = int(round(max(face.w, face.h) * scale))
    side = max(1, min(side, width, height))
    x = int(round(face.cx - side / 2))
    y = int(round(face.cy - side / 2))
    return CropBox(min(max(x, 0), width - side), min(max(y, 0), height - side), side)


def _cut(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    region = frame[box.y : box.y + box.side, box.x : box.x + box.side]  # (side, side, 3)
    return resize_center_crop(region, size)


def _median_box(boxes: Sequence[Box]) -> Box:
    cx = float(np.median([b.cx for b in boxes]))
    cy = float(np.median([b.cy for b in boxes]))
    side = float(np.median([max(b.w, b.h) for b in boxes]))
    return Box(cx - side / 2, cy - side / 2, side, side)


# ---------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class _Segment:
    start: int
    stop: int
    face: Box


def _plan_shot(start: int, stop: int, detections: list[tuple[int, Box]], min_iou: float) -> list[_Segment]:
    """Still segments of one shot from its (frame, largest face) detections, in time order."""
    half = _MEDIAN_WINDOW // 2
    smoothed = [
        (i, _median_box([b for _, b in detections[max(0, k - half) : k + half + 1]]))
        for k, (i, _) in enumerate(detections)
    ]
    groups: list[tuple[int, list[Box]]] = []
    for i, box in smoothed:
        if groups and box.iou(_median_box(groups[-1][1])) >= min_iou:
            groups[-1][1].append(box)
        else:
            groups.append((i, [box]))
    # A short-lived box (a false positive while the real face is missed, a brief glance) does not make a
    # segment of its own: its frames stay with the segment before it.
    kept = [g for g in groups if len(g[1]) >= _MIN_DETECTIONS] or [max(groups, key=lambda g: len(g[1]))]
    segments = []
    for k, (first, boxes) in enumerate(kept):
        seg_start = start if k == 0 else first
        seg_stop = kept[k + 1][0] if k + 1 < len(kept) else stop
        segments.append(_Segment(seg_start, seg_stop, _median_box(boxes)))
    return segments


def _analyse(path: Path, cfg: CropConfig, detector: FaceDetector, total: int, progress: bool,
             start: int = 0, stop: int | None = None):
    """Pass 1 over frames [start, stop): shot starts, (frame, largest face or None) detections and one
    past the last frame read (the frame count when start is 0 and stop is None)."""
    shot_starts, detections = [start], []
    prev_hist, next_detect, n = None, start, start
    stop_at = total if stop is None else min(stop, total) if total else stop
    frames = progress_bar(iter_frames(path, start=start, stop=stop), total=max(0, stop_at - start),
                  desc=f"finding faces in {path.name}", unit="frame", enabled=progress,
                  leave=False)
    for i, frame in enumerate(frames, start):
        hist = colour_histogram(frame)
        if prev_hist is not None and histogram_distance(prev_hist, hist) > cfg.cut_threshold:
            shot_starts.append(i)
            next_detect = i
        prev_hist = hist
        if i == next_detect:
            faces = detector.detect(frame)
            detections.append((i, faces[0] if faces else None))
            next_detect = i + cfg.detect_every
        n = i + 1
    return shot_starts, detections, n


# -------------------------------------------------------------------------------------------- API
def crop_video(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: CropConfig | None = None,
    detector: FaceDetector | None = None,
    progress: bool = True,
    start: int = 0,
    stop: int | None = None,
    name: str | None = None,
) -> CropResult:
    """Write face-centred square clips of a video (or frame folder) into ``out_dir``; see the module docstring.

    start, stop: crop only source frames [start, stop) (default: all); the clips' ``start``/``stop`` stay
    source frame indices. name: file name stem of the clips (default: the source's stem), written as
    ``<name>_<k:03d>.mp4``.
    Raises InputError if the video cannot be read. A video without a face gives a result with no clips
    and the reason in ``skipped``.
    """
    cfg = config or CropConfig()
    path, out = Path(path), Path(out_dir)
    if start < 0 or (stop is not None and stop <= start):
        raise InputError(f"{path.name}: bad frame range [{start}, {stop})")
    info = probe(path)
    detector = detector or FaceDetector(min_face=cfg.min_face)
    result = CropResult(path)
    stem = name or path.stem
    shot_starts, detections, n = _analyse(path, cfg, detector, info.num_frames, progress, start, stop)
    if n <= start:
        raise InputError(f"{path.name}: no frame in the range [{start}, {stop}) ({info.num_frames} frames)")

    segments: list[_Segment] = []
    bounds = shot_starts + [n]
    for s, e in zip(bounds[:-1], bounds[1:]):
        found = [(i, b) for i, b in detections if s <= i < e and b is not None]
        if not found:
            result.skipped.append(f"{path.name} frames {s}-{e - 1}: no face found")
            continue
        for seg in _plan_shot(s, e, found, cfg.min_iou):
            if seg.stop - seg.start < cfg.min_frames:
                result.skipped.append(
                    f"{path.name} frames {seg.start}-{seg.stop - 1}: shorter than {cfg.min_frames} frames"
                )
            else:
                segments.append(seg)
    if not segments:
        return result

    out.mkdir(parents=True, exist_ok=True)
    boxes = [square_box(seg.face, cfg.scale, info.width, info.height) for seg in segments]
    k, writer = 0, None
    try:
        first = segments[0].start
        frames = progress_bar(enumerate(iter_frames(path, start=first, stop=segments[-1].stop), first),
                      total=segments[-1].stop - first,
                      desc=f"cropping {path.name}", unit="frame", enabled=progress, leave=False)
        for i, frame in frames:
            while k < len(segments) and i >= segments[k].stop:
                k += 1
            if k == len(segments):
                break
            seg = segments[k]
            if i < seg.start:
                continue
            if i == seg.start:
                target = out / f"{stem}_{len(result.clips):03d}.mp4"
                writer = VideoWriter(target, info.fps, cfg.size, cfg.size, crf=cfg.crf)
            writer.write(_cut(frame, boxes[k], cfg.size))
            if i == seg.stop - 1:
                writer.close()
                writer = None
                result.clips.append(CroppedClip(target, seg.start, seg.stop, boxes[k]))
    except BaseException:
        if writer is not None:
            writer.abort()  # removes the unfinished file
        raise
    if writer is not None:  # the video held fewer frames than its header said
        writer.close()
        result.clips.append(CroppedClip(target, segments[k].start, i + 1, boxes[k]))
    return result


def crop_image(
    image: np.ndarray, size: int = 256, scale: float = 1.8, detector: FaceDetector | None = None
) -> tuple[np.ndarray, CropBox]:
    """Face-centred square crop of a uint8 (H, W, 3) RGB image, resized to (size, size, 3), and its box
    in the image (for ``paste_crop``). Raises InputError if no face is found."""
    detector = detector or FaceDetector()
    faces = detector.detect(image)
    if not faces:
        raise InputError("no face found in the image")
    h, w = image.shape[:2]
    box = square_box(faces[0], scale, w, h)
    return _cut(image, box, size), box


PASTE_MODES = ("soft", "hard")
DEFAULT_PASTE = "soft"
DEFAULT_FEATHER = 0.15  # of the crop side: the crop is 1.8 face sides, so the ramp stays clear of the face


@functools.lru_cache(maxsize=16)
def _feather_mask(side: int, feather: float) -> np.ndarray:
    i = np.arange(side, dtype=np.float64)
    edge = np.minimum(i, side - 1 - i)  # pixels from the nearest border row / column: 0 on the border
    width = min(feather * side, (side - 1) // 2)  # at most the middle's distance, so the middle is 1
    if width <= 0:  # feather 0, or a 1-pixel crop: nothing to fade
        ramp = np.ones(side)
    else:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.clip(edge / width, 0.0, 1.0))  # raised cosine, 0 -> 1
    mask = np.outer(ramp, ramp).astype(np.float32)  # (side, side): a rectangle with rounded corners
    mask.setflags(write=False)
    return mask


def feather_mask(side: int, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """The (side, side) float32 weight of a pasted crop in [0, 1]: 1 in the middle, falling along a raised
    cosine to exactly 0 on the crop's border over the outer ``feather × side`` pixels of each edge (the
    product of the two axes' ramps, so the corners are rounded). feather in [0, 0.5]; 0 is a hard square
    (all ones). Read-only (cached)."""
    if side < 1:
        raise ConfigError(f"mask side must be at least 1, got {side}")
    if not 0.0 <= feather <= 0.5:
        raise ConfigError(f"feather must be a fraction of the crop side in [0, 0.5], got {feather!r}")
    return _feather_mask(int(side), float(feather))


def paste_crop(image: np.ndarray, crop: np.ndarray, box: CropBox, mode: str = DEFAULT_PASTE,
               feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """Put ``crop`` (uint8 (S, S, 3)) back into a copy of ``image`` at ``box``, resized to the box's side.

    mode "soft" (default): blended with the image under ``feather_mask(box.side, feather)``, so the crop's
    border rows are the image's own and the seam fades over ``feather`` of the side. mode "hard": the
    resized crop replaces the square as it is."""
    if mode not in PASTE_MODES:
        raise ConfigError(f"paste mode must be one of {PASTE_MODES}, got {mode!r}")
    back = np.asarray(Image.fromarray(crop).resize((box.side, box.side), Image.Resampling.BICUBIC))
    out = image.copy()
    if mode == "hard":
        out[box.y : box.y + box.side, box.x : box.x + box.side] = back
        return out
    mask = feather_mask(box.side, feather)[..., None]  # (side, side, 1)
    region = out[box.y : box.y + box.side, box.x : box.x + box.side].astype(np.float32)  # (side, side, 3)
    blended = region + mask * (back.astype(np.float32) - region)  # exactly the image where back equals it
    out[box.y : box.y + box.side, box.x : box.x + box.side] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
