"""Files shipped inside the package: the small pretrained model (see MODEL_CARD.md)."""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODEL = "tiny-64-corpus"


def shipped_model_path(name: str = SHIPPED_MODEL) -> Path:
    """Folder of a model shipped with the package (config.json, fp16 model.safetensors, codec tables)."""
    from imf.errors import CheckpointError

    path = Path(__file__).resolve().parent / name
    if not (path / "config.json").is_file():
        raise CheckpointError(f"the shipped model {name!r} is not in this installation ({path})")
    return path
