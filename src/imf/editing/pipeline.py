"""Editing a face with ψ on a frozen IMF: owns device, no_grad, batching, source preparation.

    t̃ = ψ(t_s | h),   x̃ = D_F(IMF(t̃, t_s, f_s)) = model.decode(t̃, model.prepare_reference(x_s))

The source image is brought to the model's frame: by default a face-centred square crop (as
``imf data crop`` makes, via ``imf.data.crop.crop_image``), else the centre square. The source's own
condition is measured on the same crop at ``analysis_size`` (when the editor's conditions are landmark
measures), so condition names a request leaves out keep the source's values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from imf.checkpoint import model_hash
from imf.data.crop import CropBox, crop_image
from imf.data.video import resize_center_crop, to_uint8
from imf.editing.conditions import ConditionExtractor
from imf.editing.measures import LandmarkConditions
from imf.errors import CheckpointError, InputError
from imf.models.editor import TokenEditor
from imf.models.imf import IMF, ReferenceState
from imf.pipeline import Pipeline
from imf.progress import progress_bar

log = logging.getLogger(__name__)


def check_compatible(model: IMF, editor: TokenEditor, editor_meta: dict | None = None) -> None:
    """CheckpointError if ψ edits tokens of another size; a warning if it was trained on another IMF."""
    if editor.config.d_m != model.config.d_m:
        raise CheckpointError(f"the editor edits tokens of size d_m={editor.config.d_m}, the model's are "
                              f"d_m={model.config.d_m}: train an editor for this checkpoint")
    trained_on = (editor_meta or {}).get("model_hash")
    if trained_on and trained_on != model_hash(model):
        log.warning("the editor was trained on another IMF checkpoint (model hash %s…); its edits may be off",
                    trained_on[:12])


def condition_extractor(editor: TokenEditor, analysis_size: int = 256) -> ConditionExtractor | None:
    """The extractor that measures the editor's conditions on a frame, or None for user-file conditions."""
    if editor.config.condition_source != "landmarks":
        return None
    return LandmarkConditions(editor.config.condition_names, min_side=min(analysis_size, 160))


@dataclass
class PreparedSource:
    """frame: (S, S, 3) uint8, the model's source frame; analysis: the same crop at analysis size;
    box: where the crop lies in the original image (None for a centre square); values: the source's
    measured condition (D,) (nan where not measured); reference: the prepared IMF reference."""

    frame: np.ndarray
    analysis: np.ndarray
    box: CropBox | None
    values: np.ndarray
    reference: ReferenceState


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    return np.array(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


class EditPipeline:
    """ψ on a frozen IMF. ``prepare(image)`` once per source, then ``edit`` / ``iter_edit`` conditions."""

    def __init__(self, model: IMF, editor: TokenEditor, device: str | torch.device | None = None,
                 analysis_size: int = 256, editor_meta: dict | None = None, precision: str = "fp32",
                 batch_size: int = 8):
        check_compatible(model, editor, editor_meta)
        self.core = Pipeline(model, device=device, precision=precision, batch_size=batch_size)  # device, batching
        self.device, self.model = self.core.device, self.core.model
        self.editor = editor.to(self.device).eval()
        self.analysis_size = analysis_size
        self.extractor = condition_extractor(editor, analysis_size)

    @property
    def names(self) -> tuple[str, ...]:
        return self.editor.config.condition_names

    def measure(self, frame: np.ndarray) -> np.ndarray:
        """(D,) condition of a uint8 frame (nan where it cannot be measured or has no extractor)."""
        values = self.extractor(frame) if self.extractor is not None else None
        return np.full(len(self.names), np.nan) if values is None else np.asarray(values, dtype=np.float64)

    @torch.no_grad()
    def prepare(self, image: np.ndarray, crop: bool = True) -> PreparedSource:
        """Source image uint8 (H, W, 3) → the model's frame, its measured condition, the IMF reference."""
        size = self.model.config.resolution
        box = None
        if crop:
            try:
                analysis, box = crop_image(image, size=max(self.analysis_size, size))
            except InputError as e:
                raise InputError(f"{e} (to use the centre square of the image instead, pass --no-crop)") from None
        else:
            analysis = resize_center_crop(image, max(self.analysis_size, size))
        frame = _resize(analysis, size)
        reference = self.core.prepare_reference(frame)
        return PreparedSource(frame, analysis, box, self.measure(analysis), reference)

    def complete(self, requested: np.ndarray, source: PreparedSource) -> np.ndarray:
        """(N, D) requested conditions, nan = keep the source's value → (N, D) with every value filled."""
        requested = np.atleast_2d(np.asarray(requested, dtype=np.float64))
        if requested.shape[1] != len(self.names):
            raise InputError(f"{requested.shape[1]} condition value(s) per frame given, the editor expects "
                             f"{len(self.names)} ({', '.join(self.names)})")
        filled = np.where(np.isfinite(requested), requested, source.values[None, :])
        missing = [n for j, n in enumerate(self.names) if not np.all(np.isfinite(filled[:, j]))]
        if missing:
            why = ("no face was measured on the source" if self.extractor is not None
                   else "this editor's conditions come from files and cannot be measured on the source")
            raise InputError(f"condition(s) {', '.join(missing)} are not given and {why}: give every value "
                             f"(--set or --conditions)")
        return filled

    def edit(self, source: PreparedSource, conditions: np.ndarray) -> torch.Tensor:
        """(N, D) complete conditions → edited frames (N, 3, S, S) float32 CPU in [0, 1]."""
        with torch.inference_mode():
            h = torch.as_tensor(np.asarray(conditions, dtype=np.float32), device=self.device)  # (N, D)
            t_s = source.reference.t_r.float().expand(len(h), -1)  # (N, d_m)
            t_edit = self.editor(t_s, h)
        return self.core.decode_tokens(t_edit, source.reference)

    def iter_edit(self, source: PreparedSource, conditions: np.ndarray, batch_size: int | None = None,
                  progress: bool = True) -> Iterator[np.ndarray]:
        """Edited frames, uint8 (S, S, 3), one per row of ``conditions``, ``batch_size`` (default: the
        pipeline's) at a time."""
        batch_size = batch_size or self.core.batch_size
        bar = progress_bar(total=len(conditions), desc="edit", unit="frame", enabled=progress)
        try:
            for start in range(0, len(conditions), batch_size):
                frames = to_uint8(self.edit(source, conditions[start:start + batch_size]))  # (b, S, S, 3)
                bar.update(len(frames))
                yield from frames
        finally:
            bar.close()
