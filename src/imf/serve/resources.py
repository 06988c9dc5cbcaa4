"""The models the web app runs, loaded once at start and shared by every session (read-only)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from imf.codec.tables import CodecTables
from imf.editing.pipeline import EditPipeline
from imf.errors import CheckpointError
from imf.eval.reconstruct_eval import FrameScorer
from imf.pipeline import Pipeline

log = logging.getLogger(__name__)

METRICS = ("psnr", "lpips_alex")  # every tab shows PSNR and LPIPS v0.1 (AlexNet: as `imf demo`; 15x faster than VGG)


@dataclass
class Resources:
    """pipeline: the IMF (device, precision, batching). tables: its codec tables, or None with
    ``tables_problem`` saying why. editor: ψ on the same IMF, or None with ``editor_problem``."""

    ckpt: Path
    pipeline: Pipeline
    tables: CodecTables | None = None
    tables_problem: str | None = None
    editor: EditPipeline | None = None
    editor_problem: str | None = None
    _scorer: FrameScorer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model(self):
        return self.pipeline.model

    @property
    def resolution(self) -> int:
        return self.pipeline.resolution

    def scorer(self) -> FrameScorer:
        """PSNR and LPIPS, built on first use (LPIPS's AlexNet weights load then; without them only PSNR)."""
        with self._lock:
            if self._scorer is None:
                self._scorer = FrameScorer(METRICS, device=self.pipeline.device)
            return self._scorer

    @classmethod
    def load(cls, ckpt: str | os.PathLike | None = None, editor: str | os.PathLike | None = None,
             device: str | None = None) -> "Resources":
        """The IMF of ``ckpt`` (default: the shipped model), its codec tables if fitted, and ``editor``
        (default: the shipped editor where ``ckpt`` is the shipped model). CheckpointError for a bad ``ckpt``
        or ``editor``; missing tables or editor only disable their tab."""
        from imf.assets import shipped_editor_path, shipped_model_path
        from imf.checkpoint import load_editor, read_editor_meta
        from imf.codec.tables import has_tables, load_tables

        shipped = shipped_model_path()
        ckpt = Path(ckpt) if ckpt is not None else shipped
        pipeline = Pipeline.from_pretrained(ckpt, device=device)
        res = cls(ckpt, pipeline)
        if has_tables(ckpt):
            res.tables = load_tables(ckpt)
        else:
            res.tables_problem = (f"the model {ckpt} has no codec tables: fit them with "
                                  f"`imf codec fit --ckpt {ckpt} --data CLIPS`")
        if editor is None and ckpt.resolve() == shipped.resolve():
            editor = shipped_editor_path()
        if editor is None:
            res.editor_problem = (f"no token editor for the model {ckpt}: start the server with --editor DIR "
                                  f"(train one with `imf train-editor --ckpt {ckpt} ...`)")
        else:
            psi = load_editor(editor, pipeline.device)
            try:
                res.editor = EditPipeline(pipeline.model, psi, device=pipeline.device,
                                          editor_meta=read_editor_meta(editor))
            except CheckpointError as e:
                raise CheckpointError(f"--editor {editor}: {e}") from None
        return res
