"""A run folder is never clobbered: starting a run where one already is needs ``--resume`` (continue it) or
``--overwrite`` (remove what a run writes there first); a refused command changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from imf.errors import InputError

RUN_FILES = ("checkpoints", "model", "editor", "tensorboard", "config.yaml", "editor_train.yaml",
             "validation.jsonl", "editor_log.jsonl")
"""What ``imf train`` and ``imf train-editor`` write into a run folder (what --overwrite removes)."""


def prepare_run_folder(run_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Check ``run_dir`` before a run starts (InputError, exit 2, when it holds another run and neither
    ``resume`` nor ``overwrite`` is given); with ``overwrite``, remove the previous run's files."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise InputError("--resume continues the run in the folder, --overwrite starts over: give one")
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir} is a file, not a run folder")
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if resume:
        if not (run_dir / "checkpoints").is_dir():
            raise InputError(f"--resume: {run_dir} holds no checkpoints to continue from")
        return
    if not present:
        return
    if not overwrite:
        raise InputError(f"--out {run_dir} already holds a run ({', '.join(present)}): continue it with --resume, "
                         f"start over with --overwrite, or choose another folder")
    for name in present:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
