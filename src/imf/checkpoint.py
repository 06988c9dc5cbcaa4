"""Every model folder, in one place: the IMF (``config.json`` + ``model.safetensors``) and the token editor ψ
(``editor_config.json`` + ``editor.safetensors``). The models import no I/O; their ``save_pretrained`` /
``from_pretrained`` conveniences call this module.

The architecture is rebuilt from the config, never inferred from tensor shapes; every mismatch between
the config and the weights is reported by name. Training state (optimisers, EMA, RNG) lives apart, in
the trainer's own files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from imf.config import LAYOUT_VERSION, IMFConfig
from imf.errors import CheckpointError, ConfigError
from imf.models.editor import EditorConfig, TokenEditor
from imf.models.imf import IMF

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "imf-model"
FORMAT_VERSION = 1
EDITOR_CONFIG_NAME, EDITOR_WEIGHTS_NAME = "editor_config.json", "editor.safetensors"
EDITOR_FORMAT, EDITOR_FORMAT_VERSION = "imf-editor", 1
"""Version of the folder format (config.json + model.safetensors). The network's layout has its own
version, ``imf.config.LAYOUT_VERSION``, stored beside it as ``layout_version``."""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(model, path, dtype: torch.dtype | None = None) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "layout_version": LAYOUT_VERSION,
            "config": model.config.to_dict()}
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    tmp = path / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, path / WEIGHTS_NAME)
    _atomic_write_bytes(path / CONFIG_NAME, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def _read_meta(path: Path, name: str, fmt: str, version: int, what: str, hint: str = "") -> dict:
    """The JSON metadata file ``name`` of a model folder, checked for its format and version."""
    if not path.is_dir():
        raise CheckpointError(f"{what} folder {path} does not exist")
    meta_path = path / name
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path} is missing: not an imf {what} folder{hint}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = f" (format {meta.get('format')!r})" if isinstance(meta, dict) else ""
        raise CheckpointError(f"{meta_path} is not an imf {what} config{found}")
    if meta.get("format_version") != version:
        raise CheckpointError(f"{meta_path}: unsupported format_version {meta.get('format_version')!r} "
                              f"(this imf reads {version})")
    return meta


def read_config(path) -> IMFConfig:
    path = Path(path)
    meta = _read_meta(path, CONFIG_NAME, FORMAT, FORMAT_VERSION, "model")
    cfg_path = path / CONFIG_NAME
    layout = meta.get("layout_version", 1)  # folders written before layouts were versioned are layout 1
    if layout != LAYOUT_VERSION:
        raise CheckpointError(
            f"{path} holds a model of network layout {layout!r}; this imf builds layout {LAYOUT_VERSION} "
            f"(the supplement's Fig. 1: IMF_D with 10 + 3 StyledConvs, UpConvResBlocks with FeatResBlocks, "
            f"separate P_q and P_k, E_T's ResBlocks and MLP as drawn), so its weights cannot be loaded: "
            f"retrain it with this version"
            if layout == 1 else
            f"{path} holds a model of network layout {layout!r}; this imf builds layout {LAYOUT_VERSION}")
    try:
        return IMFConfig.from_dict(meta["config"])
    except (ConfigError, TypeError, KeyError) as e:
        raise CheckpointError(f"{cfg_path}: bad config: {e}") from None


def load_model(path, map_location: str | torch.device = "cpu") -> IMF:
    """Rebuild an IMF from ``path/config.json`` and load ``path/model.safetensors`` (cast to fp32)."""
    path = Path(path)
    config = read_config(path)
    model = IMF(config)
    load_weights(model, path / WEIGHTS_NAME, map_location)
    model.to(map_location)
    return model.eval()


def load_weights(module: torch.nn.Module, weights: Path, map_location: str | torch.device = "cpu") -> None:
    """Load a safetensors file into a module built from its config, naming every mismatch
    (missing or unexpected tensors, wrong shapes); floating tensors are cast to fp32."""
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[0]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {unexpected[0]}")
        raise CheckpointError(f"{weights} does not match its config: " + "; ".join(parts))
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, "
                                  f"the config needs {tuple(expected[name].shape)}")
        if tensor.is_floating_point():
            state[name] = tensor.float()
            if not bool(torch.isfinite(state[name]).all()):
                raise CheckpointError(f"{weights}: tensor {name} holds NaN or Inf values (a diverged or damaged "
                                      f"checkpoint)")
    module.load_state_dict(state)


def model_hash(model) -> str:
    """Hex sha256 identifying a model: its config and the exact bytes of its weights (as fp32)."""
    h = hashlib.sha256(model.config.to_json().encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().cpu()
        if t.is_floating_point():
            t = t.float()
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()

# ------------------------------------------------------------------------------------------ editor folders
def save_editor(editor: TokenEditor, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write ``path/editor_config.json`` (config + ``extra`` metadata, e.g. the IMF's model hash) and
    ``path/editor.safetensors``, each atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float().contiguous() for k, v in editor.state_dict().items()}
    tmp = path / (EDITOR_WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": EDITOR_FORMAT})
    os.replace(tmp, path / EDITOR_WEIGHTS_NAME)
    meta = {"format": EDITOR_FORMAT, "format_version": EDITOR_FORMAT_VERSION, "config": editor.config.to_dict(),
            **(extra or {})}
    _atomic_write_bytes(path / EDITOR_CONFIG_NAME, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def read_editor_meta(path: str | os.PathLike) -> dict:
    """The parsed ``editor_config.json`` of an editor folder (config under "config", plus metadata)."""
    path = Path(path)
    hint = " (that is an IMF model folder, not an editor)" if (path / CONFIG_NAME).is_file() else ""
    return _read_meta(path, EDITOR_CONFIG_NAME, EDITOR_FORMAT, EDITOR_FORMAT_VERSION, "editor", hint)


def load_editor(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TokenEditor:
    """Rebuild ψ from ``path/editor_config.json`` and load ``path/editor.safetensors`` (eval mode)."""
    path = Path(path)
    meta = read_editor_meta(path)
    try:
        config = EditorConfig.from_dict(meta.get("config"))
    except ConfigError as e:
        raise CheckpointError(f"{path / EDITOR_CONFIG_NAME}: bad config: {e}") from None
    editor = TokenEditor(config)
    load_weights(editor, path / EDITOR_WEIGHTS_NAME, map_location)
    return editor.to(map_location).eval()
