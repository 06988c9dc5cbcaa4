"""Evaluating ψ on held-out frames: is the requested condition met, and is the identity kept?

Per clip, the source is the clip's first frame x_s and the targets are its held-out frames x_t (the last
``val_fraction``, exactly the validation range of ``split_by: frames`` training). The requested condition
is the target's own h_t (measured with the editor's extractor, or read from the clip's user condition
file), so the real frame x_t shows what a perfect edit would give. For each target:

- edited x̃_t = D_F(IMF(ψ(t_s | h_t), t_s, f_s)); its condition is measured again and compared with h_t
  (mean absolute error per condition; ``pose_deg`` is the mean over yaw, pitch, roll in degrees);
- three baselines on the same frames: ``source`` (no edit: the source's own condition against h_t, what
  ψ must move away from), ``reconstruction`` (IMF(x_t, x_s) with the true token t_t: what the frozen
  IMF can show at best) and ``target`` (the real x_t at the model's size, measured like the outputs:
  the measurement's own error at that size);
- identity: the Euclidean distance between dlib face descriptors of x̃_t and x_s (below 0.6 is the
  same person by dlib's convention), beside the same distance for the real x_t and the reconstruction;
- pixels: L1 and PSNR of x̃_t and of the reconstruction against x_t.

Faces are measured on frames enlarged to ``analysis_size`` (model outputs may be 64×64); the report
says on how many frames a face was found. Condition errors need landmark conditions; for user-file
conditions only the identity and pixel figures are given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imf.data.dataset import held_out_frames
from imf.data.video import to_tensor, to_uint8
from imf.editing.clip_conditions import clip_file_conditions, measure_clip
from imf.editing.landmarks import FaceDescriptor, FaceLandmarker
from imf.editing.measures import POSE_NAMES, LandmarkConditions, landmark_measures
from imf.editing.pipeline import check_compatible
from imf.eval.metrics import psnr
from imf.models.editor import TokenEditor
from imf.models.imf import IMF
from imf.progress import progress_bar

IDENTITY_THRESHOLD = 0.6  # dlib's same-person distance


@dataclass
class _FaceReading:
    measures: dict[str, float] | None
    descriptor: np.ndarray | None


class _FaceReader:
    """Landmark measures and a face descriptor of one frame, enlarged to ``size`` first."""

    def __init__(self, size: int, descriptors: bool):
        self.size = size
        self.landmarker = FaceLandmarker()
        self.descriptor = FaceDescriptor() if descriptors else None

    def __call__(self, frame: np.ndarray) -> _FaceReading:
        if frame.shape[0] < self.size:
            frame = np.asarray(Image.fromarray(frame).resize((self.size, self.size), Image.Resampling.BICUBIC))
        face = self.landmarker(frame)
        if face is None:
            return _FaceReading(None, None)
        measures = landmark_measures(face.points, frame.shape[0], frame.shape[1])
        desc = self.descriptor(frame, face) if self.descriptor is not None else None
        return _FaceReading(measures, desc)


@dataclass
class _Tally:
    """Running lists of per-frame values, summarised as means."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self.values.setdefault(key, []).append(float(value))

    def summary(self) -> dict[str, dict[str, float]]:
        """{"variant": {"metric": mean}} from keys written "variant/metric"."""
        out: dict[str, dict[str, float]] = {}
        for k, v in sorted(self.values.items()):
            variant, metric = k.split("/", 1)
            out.setdefault(variant, {})[metric] = float(np.mean(v))
        return out

    def merge(self, other: "_Tally") -> None:
        for k, v in other.values.items():
            self.values.setdefault(k, []).extend(v)


def _condition_errors(tally: _Tally, variant: str, measured: dict[str, float] | None, requested: np.ndarray,
                      names: tuple[str, ...]) -> None:
    if measured is None:
        return
    errors = {n: abs(measured[n] - float(r)) for n, r in zip(names, requested)}
    for n, e in errors.items():
        tally.add(f"{variant}/abs_error_{n}", e)
    pose = [errors[n] for n in POSE_NAMES if n in errors]
    if pose:
        tally.add(f"{variant}/pose_error_deg", float(np.mean(pose)))


@torch.no_grad()
def evaluate_editing(model: IMF, editor: TokenEditor, clips: list[str | os.PathLike], *, val_fraction: float = 0.2,
                     max_frames: int | None = None, analysis_size: int = 256, batch_size: int = 8,
                     identity: bool = True, device: str | torch.device = "cpu", editor_meta: dict | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """The JSON-ready report described in the module docstring (per clip and over all clips)."""
    check_compatible(model, editor, editor_meta)
    model, editor = model.to(device).eval(), editor.to(device).eval()
    names = editor.config.condition_names
    landmarks = editor.config.condition_source == "landmarks"
    reader = _FaceReader(analysis_size, identity)
    size = model.config.resolution
    report: dict[str, Any] = {"condition_names": list(names), "condition_source": editor.config.condition_source,
                              "val_fraction": val_fraction, "analysis_size": analysis_size,
                              "identity_threshold": IDENTITY_THRESHOLD, "clips": []}
    total = _Tally()
    for clip in clips:
        held = held_out_frames(clip, size, val_fraction)
        idx = np.array(held.indices[:max_frames] if max_frames else held.indices)
        frames = held.frames[: len(idx)]  # (N, S, S, 3) uint8
        if landmarks:
            table = measure_clip(clip, LandmarkConditions(names), analysis_size, progress)
        else:
            table = clip_file_conditions(clip, names, int(held.indices[-1]) + 1)
        requested = table[idx].astype(np.float64)  # (N, D)
        valid = np.all(np.isfinite(requested), axis=1)

        src = held.reference  # (S, S, 3) uint8, the clip's first frame
        ref = model.prepare_reference(to_tensor(src).to(device))
        src_reading = reader(src)
        tally = _Tally()
        todo = np.flatnonzero(valid)
        bar = progress_bar(total=len(todo), desc=f"edit-eval {Path(clip).name}", unit="frame",
                   enabled=progress)
        for start in range(0, len(todo), batch_size):
            sel = todo[start:start + batch_size]
            x_t = to_tensor(frames[sel]).to(device)  # (b, 3, S, S)
            h = torch.as_tensor(requested[sel], dtype=torch.float32, device=device)  # (b, D)
            t_s = ref.t_r.expand(len(sel), -1)
            edited = model.decode(editor(t_s, h), ref).clamp(0, 1)
            recon = model.decode(model.encode_token(x_t), ref).clamp(0, 1)
            for name, x in (("edited", edited), ("reconstruction", recon)):
                for v in (x - x_t).abs().flatten(1).mean(1).tolist():
                    tally.add(f"{name}/l1", v)
                for v in psnr(x, x_t, mse_floor=1e-10).tolist():
                    tally.add(f"{name}/psnr", v)
            for k, (e_img, r_img, t_img) in enumerate(zip(to_uint8(edited), to_uint8(recon), frames[sel])):
                readings = {"edited": reader(e_img), "reconstruction": reader(r_img), "target": reader(t_img)}
                for name, reading in readings.items():
                    tally.add(f"{name}/face_found", 0.0 if reading.measures is None else 1.0)
                if landmarks:
                    for name in ("edited", "reconstruction", "target"):
                        _condition_errors(tally, name, readings[name].measures, requested[sel[k]], names)
                    _condition_errors(tally, "source", src_reading.measures, requested[sel[k]], names)
                if identity and src_reading.descriptor is not None:
                    for name, reading in readings.items():
                        if reading.descriptor is not None:
                            d = float(np.linalg.norm(reading.descriptor - src_reading.descriptor))
                            tally.add(f"{name}/identity_distance", d)
                            tally.add(f"{name}/same_identity", float(d < IDENTITY_THRESHOLD))
            bar.update(len(sel))
        bar.close()
        report["clips"].append({"clip": str(clip), "frames": int(len(idx)), "frames_with_condition": int(valid.sum()),
                                "source_face_found": src_reading.measures is not None, **tally.summary()})
        total.merge(tally)
    report["mean"] = {"frames": int(sum(c["frames_with_condition"] for c in report["clips"])), **total.summary()}
    return report
