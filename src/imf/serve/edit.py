"""The Edit tab: a face's head pose and expression changed with the token editor ψ (paper §3.4) through
``imf.editing.pipeline.EditPipeline``: the source is prepared once (face crop, its measured condition, the
IMF reference), then every slider move decodes one edited token (a few milliseconds for tiny-64)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from imf.data.video import to_uint8
from imf.editing.pipeline import PreparedSource
from imf.errors import CheckpointError, InputError
from imf.serve.resources import Resources
from imf.serve.limits import Limits
from imf.serve.uploads import check_image_or_video, first_frame, renamed

# Slider (low, high, step, neutral) of each built-in measure (imf.editing.measures: degrees, aspect ratios);
# neutral: a frontal face, eyes open, mouth closed, used where the source's value could not be measured.
SLIDERS: dict[str, tuple[float, float, float, float]] = {
    "yaw": (-45.0, 45.0, 1.0, 0.0),
    "pitch": (-30.0, 30.0, 1.0, 0.0),
    "roll": (-30.0, 30.0, 1.0, 0.0),
    "eye": (0.0, 0.5, 0.01, 0.3),
    "mouth": (0.0, 1.0, 0.01, 0.05),
}
OTHER_SLIDER = (-3.0, 3.0, 0.05, 0.0)  # conditions of a user's own editor (unknown units)


def slider(name: str) -> tuple[float, float, float, float]:
    return SLIDERS.get(name, OTHER_SLIDER)


@dataclass(frozen=True)
class EditSource:
    """A prepared source face: ``prepared`` (EditPipeline's), ``values`` its measured condition per name,
    rounded to the sliders' steps and clipped into their ranges (the slider's neutral value where it could not
    be measured)."""

    prepared: PreparedSource
    values: dict[str, float]


def _editor(res: Resources):
    if res.editor is None:
        raise CheckpointError(res.editor_problem or "no token editor loaded")
    return res.editor


def prepare(res: Resources, image: str | os.PathLike | None, limits: Limits = Limits(),
            crop: bool = True) -> EditSource:
    editor = _editor(res)
    check_image_or_video(image, limits, "image")
    with renamed({image: "image"}):
        frame = first_frame(image, "image")
        prepared = editor.prepare(frame, crop=crop)
    values = {}
    for name, v in zip(editor.names, prepared.values):
        lo, hi, step, neutral = slider(name)
        values[name] = float(np.clip(round(v / step) * step, lo, hi)) if math.isfinite(v) else neutral
    return EditSource(prepared, values)


def render(res: Resources, source: EditSource | None, values: dict[str, float]) -> np.ndarray:
    """The edited face, uint8 (S, S, 3); ``values`` (name -> value) may leave names out: the source's value."""
    editor = _editor(res)
    if source is None:
        raise InputError("no face given: upload an image first")
    unknown = sorted(set(values) - set(editor.names))
    if unknown:
        raise InputError(f"unknown condition(s) {', '.join(unknown)}; the editor has {', '.join(editor.names)}")
    h = np.array([[values.get(n, source.values[n]) for n in editor.names]], dtype=np.float64)  # (1, D)
    return to_uint8(editor.edit(source.prepared, h))[0]
