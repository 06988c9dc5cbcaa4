"""Inference for people: reconstruct a video from one reference frame, or reenact a source face with the
motion of a driving video. The model does no I/O; this module owns device, precision, batching,
``torch.inference_mode``, frame fitting, face crop / paste-back and the video files.

Conventions:
- Frames given to ``Pipeline`` methods are uint8 numpy arrays (H, W, 3) RGB (what ``imf.data.video.iter_frames``
  and Pillow give) or float tensors (3, S, S) in [0, 1]. A numpy frame that is not S×S goes through
  ``resize_center_crop`` (centre square crop, bicubic resize); its shorter side must be at least S/2
  (smaller is an ``InputError``; between S/2 and S it is upsampled with one warning).
- Output frames are uint8 (S, S, 3) (``output="uint8"``, the default) or float32 CPU tensors (3, S, S) in
  [0, 1] (``output="tensor"``), one per input frame, in order.
- Streaming: frames are pulled from the input iterator ``batch_size`` at a time, so memory stays bounded
  whatever the video's length. The reference is prepared once (``IMF.prepare_reference``) and shared by
  every batch (a reference of batch 1 for a batch of tokens).
- Reenactment (cross-identity): tokens of the driving frames, appearance of the source:
  x̂_k = D_F(IMF(t_k, t_s, f_s)). ``relative=True`` transfers the motion as a token offset,
  t_k = t_s + (t_driving,k − t_driving,0), so frame 0 is the source's own reconstruction and the
  driving identity's absolute token does not leak in.
- Precision (``resolve_precision``): "auto" (the default) runs bf16 through ``torch.autocast`` where that is
  fast, on a GPU with bf16 or on a CPU with fast bf16 (AVX512-BF16 or AMX, detected by
  ``imf.precision.cpu_has_fast_bf16``, never assumed), and fp32 elsewhere. "fp32" is the reference path.
  An explicit "bf16" runs bf16 on any CPU (with a warning where the CPU emulates it: several times slower
  than fp32); "fp16" runs on a GPU only (fp32 with a warning on CPU). ``Pipeline.precision`` says what
  runs. Outputs are always float32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from imf.data.crop import DEFAULT_FEATHER, DEFAULT_PASTE, PASTE_MODES, CropBox, crop_image, paste_crop, square_box
from imf.data.face_detect import Box, FaceDetector
from imf.data.video import VideoWriter, iter_frames, probe, resize_center_crop, to_tensor, to_uint8
from imf.precision import PRECISION_CHOICES, PRECISIONS, autocast_context  # noqa: F401  (API)
from imf.precision import inference_precision as resolve_precision
from imf.devices import DEVICE_TYPES, resolve_device  # noqa: F401  (part of this module's API)
from imf.errors import ConfigError, InputError
from imf.eval.domain import CopyComparer, CopyComparison
from imf.models.imf import IMF, ReferenceState

log = logging.getLogger(__name__)

DEFAULT_PRECISION = "auto"
OUTPUTS = ("uint8", "tensor")
DRIVING_FACE_FRAMES = 10  # --crop: the driving video's one still box is the median face of its first frames

Frame = np.ndarray | torch.Tensor


# ------------------------------------------------------------------------------------------ settings


def check_frame_size(width: int, height: int, size: int, what: str | os.PathLike, warn: bool = True) -> bool:
    """Raise InputError if the centre square of a width × height frame is under size/2; return True (and warn,
    if ``warn``) if it must be upsampled to size × size."""
    side = min(width, height)
    if 2 * side < size:
        raise InputError(f"{what}: frames of {width}x{height} are too small for the model's {size}x{size} "
                         f"(the shorter side must be at least {(size + 1) // 2})")
    if side < size:
        if warn:
            log.warning("%s: frames of %dx%d are upsampled to the model's %dx%d", what, width, height, size, size)
        return True
    return False


def _batched(items: Iterable, n: int) -> Iterator[list]:
    # itertools.batched is Python ≥ 3.12; the package supports 3.11.
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


# ------------------------------------------------------------------------------------------ pipeline
class Pipeline:
    """Runs an IMF on frame streams: device, precision, batching and inference mode (see the module docstring).

    model: an ``imf.IMF`` (moved to ``device`` and put in eval mode). device: "cpu", "cuda", "cuda:N", "mps"
    or None (cuda if available, else cpu). precision: "auto" (default), "fp32", "bf16" or "fp16"
    (``resolve_precision``). batch_size: frames per model call.
    """

    def __init__(self, model: IMF, device: str | torch.device | None = None, precision: str = DEFAULT_PRECISION,
                 batch_size: int = 8) -> None:
        if not isinstance(model, IMF):
            raise TypeError(f"model must be an imf.IMF, got {type(model).__name__}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = int(batch_size)
        self.model = model.to(self.device).eval()
        self._warned_small = False

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                        precision: str = DEFAULT_PRECISION, batch_size: int = 8) -> "Pipeline":
        """Load a checkpoint folder (``config.json`` + ``model.safetensors``); CheckpointError if it is not one."""
        from imf.checkpoint import load_model

        dev = resolve_device(device)
        return cls(load_model(path, map_location=dev), device=dev, precision=precision, batch_size=batch_size)

    @property
    def resolution(self) -> int:
        """Side S of the model's square frames."""
        return self.model.config.resolution

    # ---- frames ------------------------------------------------------------------------------------
    def _frame_tensor(self, frame: Frame) -> torch.Tensor:
        """One frame (see module docstring) → float32 (1, 3, S, S) in [0, 1] on the CPU."""
        s = self.resolution
        if isinstance(frame, torch.Tensor):
            if frame.shape != (3, s, s):
                raise InputError(f"a frame tensor must have shape (3, {s}, {s}), got {tuple(frame.shape)}")
            return frame.detach().float().cpu()[None]
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"a frame must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if (h, w) != (s, s):
            # warns once per pipeline about upsampling; raises for frames under S/2 every time
            self._warned_small |= check_frame_size(w, h, s, "input frame", warn=not self._warned_small)
            frame = resize_center_crop(frame, s)
        return to_tensor([frame])  # (1, 3, S, S); a list is stacked (copied): Pillow's arrays are read-only

    def _context(self):
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast_context(self.precision, self.device))
        return stack

    def prepare_reference(self, frame: Frame | ReferenceState) -> ReferenceState:
        """The reference state of one frame (computed once, reused by every batch); a state is returned as is."""
        if isinstance(frame, ReferenceState):
            return frame
        with self._context():
            return self.model.prepare_reference(self._frame_tensor(frame).to(self.device))

    def encode_tokens(self, frames: Iterable[Frame]) -> torch.Tensor:
        """Tokens (N, d_m) float32 on the CPU of a finite sequence of frames, encoded in batches."""
        out = []
        for chunk in _batched(frames, self.batch_size):
            x = torch.cat([self._frame_tensor(f) for f in chunk]).to(self.device)  # (B, 3, S, S)
            with self._context():
                out.append(self.model.encode_token(x).float().cpu())
        if not out:
            raise InputError("no frame to encode")
        return torch.cat(out)

    def decode_tokens(self, tokens: torch.Tensor, reference: Frame | ReferenceState) -> torch.Tensor:
        """Frames (N, 3, S, S) float32 CPU in [0, 1] of tokens (N, d_m), decoded ``batch_size`` at a time
        against one reference (the editor's edited tokens, the codec's dequantized tokens)."""
        ref = self.prepare_reference(reference)
        tokens = tokens.detach().float().reshape(-1, self.model.config.d_m)
        out = []
        for start in range(0, len(tokens), self.batch_size):
            with self._context():
                t = tokens[start:start + self.batch_size].to(self.device)  # (B, d_m)
                out.append(self.model.decode(t, ref).float().clamp_(0.0, 1.0).cpu())
        if not out:
            raise InputError("no token to decode")
        return torch.cat(out)

    def decode_stream(self, frames: Iterable[Frame], reference: Frame | ReferenceState,
                      source_token: torch.Tensor | None = None) -> Iterator[tuple[Frame, torch.Tensor]]:
        """Yield (input frame, output (3, S, S) float32 CPU) pairs, decoding ``batch_size`` frames at a time.

        Each output is decode(t, reference) with t = E_T(frame); with ``source_token`` (d_m,) or (1, d_m),
        t = source_token + (E_T(frame) − E_T(first frame)) (relative motion transfer).
        """
        ref = self.prepare_reference(reference)
        offset = None  # (1, d_m): t_s − t_0, fixed by the stream's first frame
        if source_token is not None:
            source_token = source_token.detach().float().reshape(1, -1).to(self.device)  # (1, d_m)
        for chunk in _batched(frames, self.batch_size):
            x = torch.cat([self._frame_tensor(f) for f in chunk]).to(self.device)  # (B, 3, S, S)
            with self._context():
                t = self.model.encode_token(x).float()  # (B, d_m)
                if source_token is not None:
                    if offset is None:
                        offset = source_token - t[:1]
                    t = t + offset
                x_hat = self.model.decode(t, ref).float().clamp_(0.0, 1.0).cpu()  # (B, 3, S, S)
            yield from zip(chunk, x_hat)

    @staticmethod
    def _convert(frames: Iterator[tuple[Frame, torch.Tensor]], output: str) -> Iterator[Frame]:
        for _, y in frames:
            yield y if output == "tensor" else to_uint8(y)

    def reconstruct(self, frames: Iterable[Frame], reference: Frame | ReferenceState,
                    output: str = "uint8") -> Iterator[Frame]:
        """Rebuild each frame from its own token and ``reference`` (a frame, prepared once, or a prepared state)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        return self._convert(self.decode_stream(frames, reference), output)

    def reenact(self, source_frame: Frame, driving: Iterable[Frame], relative: bool = False,
                output: str = "uint8") -> Iterator[Frame]:
        """The source's appearance moved by the driving frames' tokens (absolute, or relative: see the module
        docstring)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        ref = self.prepare_reference(source_frame)
        return self._convert(self.decode_stream(driving, ref, ref.t_r if relative else None), output)


def as_pipeline(model: Pipeline | IMF | str | os.PathLike, device: str | torch.device | None = None,
                precision: str = DEFAULT_PRECISION, batch_size: int = 8) -> Pipeline:
    """A Pipeline from a Pipeline (returned as is), an IMF or a checkpoint folder."""
    if isinstance(model, Pipeline):
        return model
    if isinstance(model, IMF):
        return Pipeline(model, device=device, precision=precision, batch_size=batch_size)
    if isinstance(model, (str, os.PathLike)):
        return Pipeline.from_pretrained(model, device=device, precision=precision, batch_size=batch_size)
    raise TypeError(f"expected a Pipeline, an IMF or a checkpoint folder, got {type(model).__name__}")


# ------------------------------------------------------------------------------------------ files
@dataclass(frozen=True)
class InferenceStats:
    """What a file-level job wrote. output: the video; frames: frames written; fps: its frame rate;
    width × height: its size; audio: an audio track was copied in; seconds: wall time of the whole job
    (loading, decoding, model, encoding); device / precision: what ran. copy_check: the model's PSNR beside
    copying the reference over the frames rebuilt (``imf.eval.domain``; reconstruction only, else None)."""

    output: Path
    frames: int
    fps: float
    width: int
    height: int
    audio: bool
    seconds: float
    device: str
    precision: str
    copy_check: CopyComparison | None = None

    @property
    def frames_per_second(self) -> float:
        """Processing speed (frames per wall-clock second)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _frame_limit(num_frames: int, max_frames: int | None) -> int:
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, got {max_frames}")
    return num_frames if max_frames is None else min(num_frames, max_frames)


def _progress(items, total: int, desc: str, enabled: bool):
    from imf.progress import progress_bar

    return progress_bar(items, total=total, desc=desc, unit="frame", enabled=enabled, leave=False)


def _write(out, fps: float, width: int, height: int, crf: int, audio_from, frames: Iterable[np.ndarray]) -> int:
    with VideoWriter(out, fps, width, height, crf=crf, audio_from=audio_from) as writer:
        for frame in frames:
            writer.write(frame)
        return writer.frames_written


def reconstruct_video(model: Pipeline | IMF | str | os.PathLike, video: str | os.PathLike, out: str | os.PathLike,
                      *, ref_frame: int = 0, compare: bool = False, max_frames: int | None = None,
                      device: str | None = None, precision: str = DEFAULT_PRECISION, batch_size: int = 8, crf: int = 18,
                      progress: bool = True) -> InferenceStats:
    """Reconstruct every frame of ``video`` (centre square crop, S×S) from frame ``ref_frame`` and write an
    H.264 ``out`` at the video's frame rate, with its audio. ``compare``: ``out`` is side by side
    (reference | original | reconstruction, 3S × S). ``model``: a Pipeline, an IMF or a checkpoint folder."""
    start = time.perf_counter()
    pipe = as_pipeline(model, device, precision, batch_size)
    s = pipe.resolution
    info = probe(video)
    n = _frame_limit(info.num_frames, max_frames)
    if not 0 <= ref_frame < n:
        raise InputError(f"{video}: reference frame {ref_frame} is outside its {n} frames")
    check_frame_size(info.width, info.height, s, video)
    ref_np = next(iter_frames(video, size=s, start=ref_frame, stop=ref_frame + 1))  # (S, S, 3)
    ref = pipe.prepare_reference(ref_np)
    copy_check = CopyComparer(Path(video).name)  # the out-of-domain check, on every frame but the reference

    def frames():
        pairs = pipe.decode_stream(iter_frames(video, size=s, stop=n), ref)
        for i, (x, y) in enumerate(_progress(pairs, n, f"reconstructing {Path(video).name}", progress)):
            y = to_uint8(y)
            if i != ref_frame:
                copy_check.add(x, y, ref_np)
            yield np.concatenate([ref_np, x, y], axis=1) if compare else y  # (S, 3S or S, 3)

    width = 3 * s if compare else s
    written = _write(out, info.fps, width, s, crf, video if info.has_audio else None, frames())
    return InferenceStats(Path(out), written, info.fps, width + width % 2, s, info.has_audio,
                          time.perf_counter() - start, str(pipe.device), pipe.precision, copy_check.result())


def driving_face_box(video: str | os.PathLike, scale: float = 1.8, detector: FaceDetector | None = None,
                     frames: int = DRIVING_FACE_FRAMES) -> CropBox:
    """One still square box for a whole driving video: the median of the largest faces found in its first
    ``frames`` frames, enlarged ``scale`` times (as ``imf.data.crop.square_box``). InputError if none."""
    detector = detector or FaceDetector()
    faces, size = [], None
    for frame in iter_frames(video, stop=frames):
        size = frame.shape[1], frame.shape[0]
        found = detector.detect(frame)
        if found:
            faces.append(found[0])
    if not faces:
        raise InputError(f"{video}: no face found in its first {frames} frames (needed by --crop)")
    side = float(np.median([max(f.w, f.h) for f in faces]))
    cx, cy = float(np.median([f.cx for f in faces])), float(np.median([f.cy for f in faces]))
    return square_box(Box(cx - side / 2, cy - side / 2, side, side), scale, *size)


def _cut(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    return resize_center_crop(frame[box.y : box.y + box.side, box.x : box.x + box.side], size)  # (S, S, 3)


def reenact_video(model: Pipeline | IMF | str | os.PathLike, source: str | os.PathLike, driving: str | os.PathLike,
                  out: str | os.PathLike, *, relative: bool = False, crop: bool = False, compare: bool = False,
                  max_frames: int | None = None, device: str | None = None, precision: str = DEFAULT_PRECISION,
                  batch_size: int = 8, crf: int = 18, crop_scale: float = 1.8, detector: FaceDetector | None = None,
                  paste: str = DEFAULT_PASTE, feather: float = DEFAULT_FEATHER,
                  progress: bool = True) -> InferenceStats:
    """Animate ``source`` (an image, or a video's first frame) with the motion of ``driving``; write an H.264
    ``out`` at the driving video's frame rate with its audio.

    Without ``crop``: source and driving frames are centre square crops at S×S, and so is the output.
    With ``crop``: the source is cut around its face (``crop_image``), the driving video around one still
    face box (``driving_face_box``), and each result is pasted back into the full source image: the output
    has the source's size (padded to even). ``paste``: "soft" (default) blends the crop in under a feathered
    mask that falls to 0 at the crop's border over ``feather`` of its side (``imf.data.crop.feather_mask``),
    "hard" replaces the square as it is. ``compare``: ``out`` is side by side (source | driving | result,
    all S×S crops as the model sees them, 3S × S).
    """
    if paste not in PASTE_MODES:
        raise ConfigError(f"paste must be one of {PASTE_MODES}, got {paste!r}")
    if not 0.0 <= feather <= 0.5:
        raise ConfigError(f"feather must be a fraction of the crop side in [0, 0.5], got {feather!r}")
    start = time.perf_counter()
    pipe = as_pipeline(model, device, precision, batch_size)
    s = pipe.resolution
    src_info, drv_info = probe(source), probe(driving)
    n = _frame_limit(drv_info.num_frames, max_frames)
    src_full = next(iter_frames(source, stop=1))  # (H, W, 3)
    if crop:
        detector = detector or FaceDetector()
        try:
            src, src_box = crop_image(src_full, size=s, scale=crop_scale, detector=detector)
        except InputError as e:
            raise InputError(f"{source}: {e} (needed by --crop)") from None
        check_frame_size(src_box.side, src_box.side, s, f"{source} (face crop)")
        drv_box = driving_face_box(driving, crop_scale, detector)
        check_frame_size(drv_box.side, drv_box.side, s, f"{driving} (face crop)")
        drv_frames = (_cut(f, drv_box, s) for f in iter_frames(driving, stop=n))
    else:
        check_frame_size(src_info.width, src_info.height, s, source)
        check_frame_size(drv_info.width, drv_info.height, s, driving)
        src = resize_center_crop(src_full, s)  # (S, S, 3)
        drv_frames = iter_frames(driving, size=s, stop=n)
    ref = pipe.prepare_reference(src)

    def frames():
        pairs = pipe.decode_stream(drv_frames, ref, ref.t_r if relative else None)
        for x, y in _progress(pairs, n, f"reenacting {Path(source).name}", progress):
            y = to_uint8(y)
            if compare:
                yield np.concatenate([src, x, y], axis=1)  # (S, 3S, 3)
            elif crop:
                yield paste_crop(src_full, y, src_box, paste, feather)  # (H, W, 3)
            else:
                yield y

    if compare:
        width, height = 3 * s, s
    elif crop:
        height, width = src_full.shape[:2]
    else:
        width = height = s
    written = _write(out, drv_info.fps, width, height, crf, driving if drv_info.has_audio else None, frames())
    return InferenceStats(Path(out), written, drv_info.fps, width + width % 2, height + height % 2,
                          drv_info.has_audio, time.perf_counter() - start, str(pipe.device), pipe.precision)
