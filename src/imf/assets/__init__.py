"""Files shipped inside the package: the small pretrained model and its token editor ψ (see MODEL_CARD.md)."""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODEL = "tiny-64-corpus-v2"
SHIPPED_EDITOR = "tiny-64-corpus-v2-editor"
"""The editor ψ trained on the frozen SHIPPED_MODEL (``imf train-editor``; editor_config.json records its hash)."""


def shipped_model_path(name: str = SHIPPED_MODEL) -> Path:
    """Folder of a model shipped with the package (config.json, fp16 model.safetensors, codec tables)."""
    from imf.errors import CheckpointError

    path = Path(__file__).resolve().parent / name
    if not (path / "config.json").is_file():
        raise CheckpointError(f"the shipped model {name!r} is not in this installation ({path})")
    return path


def shipped_editor_path(name: str = SHIPPED_EDITOR) -> Path:
    """Folder of an editor shipped with the package (editor_config.json, editor.safetensors)."""
    from imf.errors import CheckpointError

    path = Path(__file__).resolve().parent / name
    if not (path / "editor_config.json").is_file():
        raise CheckpointError(f"the shipped editor {name!r} is not in this installation ({path})")
    return path
