"""The codec's fitted numbers: token statistics, per-quality steps and integer entropy tables.

Stored beside a model in its checkpoint folder as ``codec.json`` (format, qualities, table ranges, the
model hash they were fitted for, how they were fitted) and ``codec.safetensors`` (arrays:
``center``, ``spread`` (d,) float32; per quality q: ``q{q}.step`` (d,) float32,
``q{q}.static`` and ``q{q}.temporal`` (d, n + 1) int32 weights, see :class:`imf.codec.entropy.SymbolTable`).

Identity: :meth:`CodecTables.identity` is the sha256 of a canonical serialization of everything a
decoder uses (quality levels, table ranges and weights, steps, centers); an ``.imf`` file names the
tables it was coded with by this hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from imf.codec.entropy import PRECISION, SymbolTable
from imf.codec.quantizer import TokenQuantizer
from imf.errors import CheckpointError

TABLES_FORMAT = 1
JSON_NAME = "codec.json"
ARRAYS_NAME = "codec.safetensors"


def _info_digest(info: dict) -> str:
    """sha256 of the fitted statistics (canonical JSON): stored in codec.safetensors, checked at load, so an
    edit of codec.json's "info" (the bits per frame that --target-kbps reads) is noticed. Tables saved
    before this check carry no digest and load as before."""
    return hashlib.sha256(json.dumps(info, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class QualityLevel:
    """Everything to code tokens at one quality: the quantizer and both entropy models."""

    quality: int
    quantizer: TokenQuantizer
    static: SymbolTable  # over symbols
    temporal: SymbolTable  # over the residual to the previous frame's symbol


@dataclass(frozen=True)
class CodecTables:
    """Token statistics (center, spread: (d,) float32) and one :class:`QualityLevel` per quality."""

    center: np.ndarray
    spread: np.ndarray
    levels: dict[int, QualityLevel]
    model_hash: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.center.shape[0])

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(sorted(self.levels))

    def level(self, quality: int) -> QualityLevel:
        if quality not in self.levels:
            raise CheckpointError(f"no codec tables for quality {quality!r}; fitted qualities: {list(self.qualities)}")
        return self.levels[quality]

    def quality_for_token_rate(self, kbps: float, fps: float, entropy: str = "temporal") -> int:
        """The highest quality whose token stream, at the bits per frame measured when fitting, stays within
        ``kbps`` at ``fps`` (the lowest fitted quality if none does). Keyframes are not counted."""
        measured = self.info.get("bits_per_frame", {})
        if not measured:
            raise CheckpointError("these codec tables hold no measured rates (refit them with `imf codec fit`)")
        if kbps <= 0 or fps <= 0:
            raise ValueError(f"target rate and fps must be positive, got {kbps} kbps at {fps} fps")
        fitting = [q for q in self.qualities if measured[str(q)][entropy] * fps / 1000.0 <= kbps]
        return max(fitting) if fitting else min(self.qualities)

    def identity(self) -> str:
        """Hex sha256 over what the decoder uses, in a fixed order and byte layout."""
        h = hashlib.sha256()
        h.update(f"imf-codec-tables/{TABLES_FORMAT}/p{PRECISION}/d{self.dim}".encode())
        h.update(np.ascontiguousarray(self.center, "<f4").tobytes())
        for q in self.qualities:
            lv = self.levels[q]
            h.update(f"/q{q}/{lv.static.min_symbol}/{lv.temporal.min_symbol}".encode())
            h.update(np.ascontiguousarray(lv.quantizer.step, "<f4").tobytes())
            for t in (lv.static, lv.temporal):
                h.update(f"/{t.weights.shape[1]}".encode())
                h.update(np.ascontiguousarray(t.weights, "<i8").tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ storage

    def save(self, folder: str | os.PathLike) -> None:
        """Write codec.json + codec.safetensors into folder (each via a temporary file, then renamed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, torch.Tensor] = {
            "center": torch.from_numpy(np.asarray(self.center, np.float32)),
            "spread": torch.from_numpy(np.asarray(self.spread, np.float32)),
        }
        levels = []
        for q in self.qualities:
            lv = self.levels[q]
            arrays[f"q{q}.step"] = torch.from_numpy(lv.quantizer.step.copy())
            # weights are < 2**24: stored as int32, used as int64
            arrays[f"q{q}.static"] = torch.from_numpy(lv.static.weights.astype(np.int32))
            arrays[f"q{q}.temporal"] = torch.from_numpy(lv.temporal.weights.astype(np.int32))
            levels.append({"quality": q, "static_min_symbol": lv.static.min_symbol,
                           "temporal_min_symbol": lv.temporal.min_symbol})
        meta = {"format": TABLES_FORMAT, "precision": PRECISION, "dim": self.dim, "levels": levels,
                "model_hash": self.model_hash, "identity": self.identity(), "info": self.info}
        tmp_arrays = folder / (ARRAYS_NAME + ".tmp")
        save_file(arrays, str(tmp_arrays), metadata={"info_sha256": _info_digest(self.info)})
        tmp_json = folder / (JSON_NAME + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp_arrays, folder / ARRAYS_NAME)
        os.replace(tmp_json, folder / JSON_NAME)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "CodecTables":
        """Read tables saved by :meth:`save`; CheckpointError if missing, of another format, or altered."""
        folder = Path(folder)
        jpath, apath = folder / JSON_NAME, folder / ARRAYS_NAME
        if not jpath.is_file() or not apath.is_file():
            raise CheckpointError(
                f"{folder} has no codec tables ({JSON_NAME}, {ARRAYS_NAME}); fit them with "
                f"`imf codec fit --ckpt {folder} --data VIDEO...`")
        try:
            meta = json.loads(jpath.read_text())
            arrays = {k: v.numpy() for k, v in load_file(str(apath)).items()}
            with safe_open(str(apath), "pt") as f:
                info_digest = (f.metadata() or {}).get("info_sha256")
            if meta.get("format") != TABLES_FORMAT or meta.get("precision") != PRECISION:
                raise CheckpointError(f"{jpath}: codec tables format {meta.get('format')!r} "
                                      f"(precision {meta.get('precision')!r}) is not format {TABLES_FORMAT}")
            center, spread = arrays["center"], arrays["spread"]
            levels = {}
            for entry in meta["levels"]:
                q = int(entry["quality"])
                levels[q] = QualityLevel(
                    quality=q,
                    quantizer=TokenQuantizer(center, arrays[f"q{q}.step"]),
                    static=SymbolTable(arrays[f"q{q}.static"], int(entry["static_min_symbol"])),
                    temporal=SymbolTable(arrays[f"q{q}.temporal"], int(entry["temporal_min_symbol"])),
                )
            tables = cls(center, spread, levels, str(meta.get("model_hash", "")), dict(meta.get("info", {})))
        except CheckpointError:
            raise
        except Exception as e:  # json, safetensors and shape errors all mean an unreadable file
            raise CheckpointError(f"{folder}: unreadable codec tables ({type(e).__name__}: {e})") from None
        if meta.get("identity") != tables.identity():
            raise CheckpointError(f"{folder}: codec tables do not match their recorded identity (altered files?)")
        if info_digest is not None and info_digest != _info_digest(tables.info):
            raise CheckpointError(f"{jpath}: the fitted statistics (\"info\": bits per frame, sources) were edited "
                                  f"after fitting; refit with `imf codec fit`")
        return tables


def load_tables(folder: str | os.PathLike) -> CodecTables:
    """The codec tables stored in a checkpoint folder (see :meth:`CodecTables.load`)."""
    return CodecTables.load(folder)


def has_tables(folder: str | os.PathLike) -> bool:
    return (Path(folder) / JSON_NAME).is_file() and (Path(folder) / ARRAYS_NAME).is_file()
