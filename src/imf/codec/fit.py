"""Fitting the codec's tables on training frames: token statistics, steps and both entropy models.

For each source (a video path read with ``imf.data.video.iter_frames`` at the model's resolution, or
an array of uint8 frames (T, S, S, 3)) the tokens of consecutive frames are computed. Then:
- center_j, spread_j: mean and standard deviation of token dimension j over all frames;
- for each quality q: step = spread * step_scale(q); the static table is fitted on the symbols of all
  frames, the temporal table on the residuals between consecutive frames of the same source.
Use the frames the codec will see in practice (same resolution, every frame: the temporal model learns
the frame-to-frame change at the clip's frame rate).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from imf.codec.entropy import fit_table
from imf.codec.quantizer import DEFAULT_QUALITIES, TokenQuantizer, step_scale
from imf.codec.tables import CodecTables, QualityLevel
from imf.errors import InputError
from imf.progress import progress_bar

Source = str | os.PathLike | np.ndarray


def _frames_of(source: Source, size: int, max_frames: int | None, fraction: tuple[float, float]) -> Iterable[np.ndarray]:
    if isinstance(source, np.ndarray):
        n = len(source)
        lo, hi = int(fraction[0] * n), int(round(fraction[1] * n))
        frames = source[lo:hi]
        return frames if max_frames is None else frames[:max_frames]
    from imf.data.video import iter_frames, probe

    n = probe(source).num_frames
    lo, hi = int(fraction[0] * n), int(round(fraction[1] * n))
    if max_frames is not None:
        hi = min(hi, lo + max_frames)
    return iter_frames(source, size=size, start=lo, stop=hi)


def collect_tokens(model, sources: Sequence[Source], *, max_frames: int | None = None,
                   fraction: tuple[float, float] = (0.0, 1.0), batch_size: int = 16,
                   progress: bool = True) -> list[np.ndarray]:
    """Tokens of every source's frames, in frame order: a list of (T_i, d) float32 arrays."""
    from imf.devices import model_device
    from imf.data.video import to_tensor

    model.eval()
    size = model.config.resolution
    device = model_device(model)
    out = []
    bar = progress_bar(unit="frame", desc="codec fit: tokens", enabled=progress)
    for source in sources:
        tokens, batch = [], []

        def run() -> None:
            with torch.inference_mode():
                tokens.append(model.encode_token(to_tensor(batch).to(device)).float().cpu().numpy())  # (B, d)
            bar.update(len(batch))
            batch.clear()

        for frame in _frames_of(source, size, max_frames, fraction):
            if frame.shape != (size, size, 3) or frame.dtype != np.uint8:
                raise InputError(f"codec fit: frames must be uint8 ({size}, {size}, 3), got {frame.dtype} {frame.shape}")
            batch.append(frame)
            if len(batch) == batch_size:
                run()
        if batch:
            run()
        if tokens:
            out.append(np.concatenate(tokens))
    bar.close()
    if not out:
        raise InputError("codec fit: the sources hold no frames")
    return out


def fit_tables(tokens: Sequence[np.ndarray], *, qualities: Sequence[int] = DEFAULT_QUALITIES,
               model_hash: str = "", info: dict | None = None,
               quantizer: tuple[np.ndarray, np.ndarray] | None = None) -> CodecTables:
    """Fit CodecTables from per-source token sequences [(T_i, d)] (see the module doc).

    quantizer: a fixed (center, spread) to keep instead of measuring them on ``tokens``.
    """
    every = np.concatenate(tokens).astype(np.float64)  # (N, d)
    if every.shape[0] < 2:
        raise InputError(f"codec fit needs at least 2 frames, got {every.shape[0]}")
    if quantizer is not None:
        center, spread = quantizer
    else:
        center = every.mean(axis=0).astype(np.float32)
        spread = every.std(axis=0)
        # A constant dimension has spread 0; give it a tiny step (it quantizes to 0 anyway).
        spread = np.maximum(spread, max(float(spread.max()) * 1e-4, 1e-8)).astype(np.float32)
    levels = {}
    bits_per_frame = {}
    for q in sorted(set(int(q) for q in qualities)):
        step_scale(q)  # validates q
        quantizer = TokenQuantizer.from_spread(center, spread, q)
        symbols = [quantizer.quantize(t) for t in tokens]  # [(T_i, d)]
        residuals = [s[1:] - s[:-1] for s in symbols if len(s) > 1]  # [(T_i - 1, d)]
        static = fit_table(np.concatenate(symbols))
        temporal = fit_table(np.concatenate(residuals)) if residuals else static
        levels[q] = QualityLevel(q, quantizer, static, temporal)
        # Mean code length per frame on the fitting data (temporal: the first frame of each source static).
        n = sum(len(s) for s in symbols)
        temporal_bits = sum(static.bits(s[:1]) + (temporal.bits(s[1:] - s[:-1]) if len(s) > 1 else 0.0)
                            for s in symbols)
        bits_per_frame[str(q)] = {"static": static.bits(np.concatenate(symbols)) / n, "temporal": temporal_bits / n}
    meta = {"num_frames": int(every.shape[0]), "num_sources": len(tokens), "bits_per_frame": bits_per_frame}
    meta.update(info or {})
    return CodecTables(center, spread.astype(np.float32), levels, model_hash, meta)


def fit_codec(model, sources: Sequence[Source], *, qualities: Sequence[int] = DEFAULT_QUALITIES,
              max_frames: int | None = None, fraction: tuple[float, float] = (0.0, 1.0),
              batch_size: int = 16, progress: bool = True) -> CodecTables:
    """Token statistics and entropy tables of ``model`` on ``sources`` for the given quality levels.

    max_frames: at most this many frames per source. fraction: the part of each source used, e.g.
    (0.0, 0.8) for the first 80% (keeping the rest held out). Save with ``tables.save(ckpt_dir)``.
    """
    from imf.checkpoint import model_hash

    if not 0.0 <= fraction[0] < fraction[1] <= 1.0:
        raise ValueError(f"fraction must satisfy 0 <= start < stop <= 1, got {fraction}")
    tokens = collect_tokens(model, sources, max_frames=max_frames, fraction=fraction,
                            batch_size=batch_size, progress=progress)
    names = [Path(s).name if not isinstance(s, np.ndarray) else f"array{tuple(s.shape)}" for s in sources]
    return fit_tables(tokens, qualities=qualities, model_hash=model_hash(model),
                      info={"sources": names, "fraction": list(fraction)})
