"""Training checkpoints: ``RUN/checkpoints/step_XXXXXXXX.pt`` written atomically, the last K kept.

Each holds everything a resumed run needs to continue the same run: generator, discriminator, EMA,
both optimisers, the grad scaler, step, data position and RNG states. Loaded with
``torch.load(weights_only=True)``: only tensors and plain containers, no pickled code.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imf.errors import CheckpointError


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
             "numpy_has_gauss": int(np_state[3]), "numpy_gauss": float(np_state[4])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``step_XXXXXXXX.pt`` under a temporary name, fsync it, then rename it into place, so a reader
    (or a resumed run) never sees half a checkpoint; then keep the last ``keep`` (0 = all). A failed write
    (disk full, folder not writable) is a CheckpointError of one line: its temporary file is removed and
    the earlier checkpoints are left as they were. Temporary files of a killed run are removed first."""
    folder = checkpoint_dir(run_dir)
    path = folder / f"step_{step:08d}.pt"
    tmp = path.with_name(path.name + ".tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("step_*.pt.tmp"):
            stale.unlink(missing_ok=True)
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as a RuntimeError of its stream writer
        tmp.unlink(missing_ok=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise CheckpointError(f"could not write the checkpoint {path}: {reason}; the earlier checkpoints "
                              f"are intact") from None
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    folder = checkpoint_dir(run_dir)
    return sorted(folder.glob("step_*.pt")) if folder.is_dir() else []


def load_latest(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise CheckpointError(f"--resume: no checkpoint in {checkpoint_dir(run_dir)}")
    return read_checkpoint(ckpts[-1], map_location)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """One training checkpoint's state (tensors only: no pickled code runs). FileNotFoundError when the file
    is gone; CheckpointError when it is truncated or not a checkpoint."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"{path} is not a readable training checkpoint: {e}") from None


def load_ema_generator(path: str | Path, map_location: str | torch.device = "cpu"):
    """The EMA generator of one training checkpoint (what a run validates and exports to ``RUN/model``), in
    eval mode, and its step: ``(IMF, step)``. Raises FileNotFoundError when the file is gone (keep-last-K
    deletes old ones while a run goes on) and CheckpointError when it is not a readable training checkpoint."""
    from imf.config import IMFConfig
    from imf.models.imf import IMF

    path = Path(path)
    state = read_checkpoint(path, map_location)
    try:
        model = IMF(IMFConfig.from_dict(json.loads(state["config"])["model"]))
        model.load_state_dict(state["ema"])
        step = int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: no EMA generator can be loaded from it ({e})") from None
    return model.to(map_location).eval(), step
