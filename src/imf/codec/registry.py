"""Where this user's checkpoints live, by model hash, so ``imf decode FILE.imf`` can find its model.

``imf encode`` and ``imf codec fit`` record ``{model sha256: checkpoint folder}`` in
``imf.cache.cache_dir()/codec/checkpoints.json``; ``imf decode`` without ``--ckpt`` looks the file's
model hash up there. A stale entry (folder gone or now holding another model) is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from imf.cache import cache_dir

_FILE = "checkpoints.json"


def _index_path() -> Path:
    return cache_dir() / "codec" / _FILE


def _read() -> dict[str, str]:
    try:
        data = json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember_checkpoint(model_hash: str, folder: str | os.PathLike) -> None:
    """Record that the model with this hash lives in folder (best effort: I/O errors are ignored)."""
    index = _read()
    index[model_hash] = str(Path(folder).resolve())
    path = _index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def find_checkpoint(model_hash: str) -> Path | None:
    """The recorded folder of the model with this hash, if it still exists."""
    folder = _read().get(model_hash)
    return Path(folder) if folder and Path(folder).is_dir() else None
